using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using PrefOnline.Worker.Checkpoints;

namespace PrefOnline.Worker.Tests.Checkpoints;

public sealed class CheckpointOptionsTests
{
    [Fact]
    public void Defaults_are_valid()
    {
        var defaults = new CheckpointOptions();
        Assert.Empty(CheckpointOptionsValidator.Problems(defaults));
        Assert.Equal(("checkpoints", 5, 3), (defaults.Directory, defaults.KeepLast, defaults.RetryCount));
    }

    [Fact]
    public void Each_invalid_setting_gives_one_line_naming_its_key_and_value()
    {
        var problems = CheckpointOptionsValidator.Problems(new CheckpointOptions
        {
            Directory = " ",
            KeepLast = 0,
            RetryCount = -1,
            RetryBaseDelay = TimeSpan.FromSeconds(-1),
            RetryMaxDelay = TimeSpan.FromHours(1),
        });
        Assert.Equal(5, problems.Count);
        Assert.Contains("Checkpoints:Directory must name a directory (got an empty value)", problems);
        Assert.Contains("Checkpoints:KeepLast must be between 1 and 10000 (got 0)", problems);
        Assert.Contains("Checkpoints:RetryCount must be between 0 and 20 (got -1)", problems);
        Assert.Contains(problems, p => p.StartsWith("Checkpoints:RetryBaseDelay must be between", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.StartsWith("Checkpoints:RetryMaxDelay must be between", StringComparison.Ordinal));
        Assert.Throws<ArgumentException>(() => CheckpointOptionsValidator.ThrowIfInvalid(new CheckpointOptions { KeepLast = 0 }));
    }

    [Fact]
    public async Task Opening_a_store_with_invalid_options_fails_before_touching_disk()
    {
        var directory = Path.Combine(Path.GetTempPath(), "prefonline-checkpoint-tests", "never-" + Guid.NewGuid().ToString("N"));
        var e = await Assert.ThrowsAsync<ArgumentException>(() => CheckpointStore.OpenAsync(new CheckpointOptions { Directory = directory, KeepLast = 0 }));
        Assert.Contains("Checkpoints:KeepLast", e.Message);
        Assert.False(Directory.Exists(directory));
    }

    [Fact]
    public async Task Opening_a_store_on_a_file_says_so_at_once()
    {
        using var temp = new TempStore();
        var file = Path.Combine(temp.Root, "not-a-directory");
        await File.WriteAllTextAsync(file, "x");
        var e = await Assert.ThrowsAsync<ArgumentException>(() => CheckpointStore.OpenAsync(new CheckpointOptions { Directory = file }));
        Assert.StartsWith($"Checkpoints:Directory {file} is a file, not a directory", e.Message);
    }

    [Fact]
    public void The_section_binds_from_configuration_and_fails_validation_at_start()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Checkpoints:Directory"] = "/data/ckpt",
            ["Checkpoints:KeepLast"] = "7",
            ["Checkpoints:RetryBaseDelay"] = "00:00:00.050",
        }).Build();
        using var good = new ServiceCollection().AddCheckpointOptions(configuration).BuildServiceProvider();
        var options = good.GetRequiredService<IOptions<CheckpointOptions>>().Value;
        Assert.Equal(("/data/ckpt", 7, TimeSpan.FromMilliseconds(50)), (options.Directory, options.KeepLast, options.RetryBaseDelay));

        var bad = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Checkpoints:KeepLast"] = "0" }).Build();
        using var provider = new ServiceCollection().AddCheckpointOptions(bad).BuildServiceProvider();
        var failure = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<CheckpointOptions>>().Value);
        Assert.Contains("Checkpoints:KeepLast must be between 1 and 10000 (got 0)", failure.Failures);
    }

    [Fact]
    public void The_shipped_config_section_binds_validates_and_matches_the_documented_defaults()
    {
        var repository = new DirectoryInfo(AppContext.BaseDirectory);
        while (repository is not null && !File.Exists(Path.Combine(repository.FullName, "PrefOnline.sln"))) repository = repository.Parent;
        Assert.True(repository is not null, "repository root (PrefOnline.sln) not found above " + AppContext.BaseDirectory);
        var configuration = new ConfigurationBuilder().AddJsonFile(Path.Combine(repository.FullName, "config", "appsettings.json")).Build();
        Assert.True(configuration.GetSection(CheckpointOptions.SectionName).Exists(), "config/appsettings.json has no Checkpoints section");
        using var provider = new ServiceCollection().AddCheckpointOptions(configuration).BuildServiceProvider();
        var shipped = provider.GetRequiredService<IOptions<CheckpointOptions>>().Value;
        var defaults = new CheckpointOptions();
        Assert.Equal((defaults.Directory, defaults.KeepLast, defaults.RetryCount, defaults.RetryBaseDelay, defaults.RetryMaxDelay),
                     (shipped.Directory, shipped.KeepLast, shipped.RetryCount, shipped.RetryBaseDelay, shipped.RetryMaxDelay));
    }

    [Fact]
    public void Config_hash_is_stable_under_order_and_key_case_and_changes_with_any_value()
    {
        var a = CheckpointConfigHash.Compute([new("Learning:Beta", "0.1"), new("Learning:Objective", "dpo"), new("Learning", null)]);
        var b = CheckpointConfigHash.Compute([new("learning:objective", "dpo"), new("LEARNING:BETA", "0.1")]);
        var c = CheckpointConfigHash.Compute([new("Learning:Beta", "0.2"), new("Learning:Objective", "dpo")]);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.Matches("^sha256:[0-9a-f]{64}$", a);
    }
}
