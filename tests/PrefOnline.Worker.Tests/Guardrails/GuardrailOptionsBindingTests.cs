using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using PrefOnline.Learning.Guardrails;
using PrefOnline.Worker.Guardrails;

namespace PrefOnline.Worker.Tests.Guardrails;

/// <summary>The Guardrails section binds from JSON-style keys and environment variables (PREFONLINE__Guardrails__…) and is validated at start.</summary>
public sealed class GuardrailOptionsBindingTests
{
    private static IServiceProvider Build(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        return new ServiceCollection().AddPrefOnlineGuardrail(configuration, _ => 12).BuildServiceProvider();
    }

    [Fact]
    public void NestedRecordsTimeSpansAndFlagEnumsBind()
    {
        var provider = Build(new()
        {
            ["Guardrails:Action"] = "PauseUpdates",
            ["Guardrails:KlBudget"] = "3.5",
            ["Guardrails:PauseDuration"] = "00:20:00",
            ["Guardrails:HumanRating:TripOn"] = "Up, Down",
            ["Guardrails:HumanRating:Cusum:Threshold"] = "15",
            ["Guardrails:ModelReward:Enabled"] = "false",
        });
        var options = provider.GetRequiredService<IOptions<GuardrailOptions>>().Value;
        Assert.Equal(GuardrailAction.PauseUpdates, options.Action);
        Assert.Equal(3.5, options.KlBudget);
        Assert.Equal(TimeSpan.FromMinutes(20), options.PauseDuration);
        Assert.Equal(DriftDirection.Both, options.HumanRating.TripOn);
        Assert.Equal(15, options.HumanRating.Cusum.Threshold);
        Assert.Equal(100, options.HumanRating.Cusum.WarmUp); // the section's default survives a partial override
        Assert.False(options.ModelReward.Enabled);
        var guardrail = provider.GetRequiredService<Guardrail>();
        Assert.Equal(12, guardrail.Status.GoodVersion);
    }

    [Fact]
    public void InvalidValuesFailValidationWithTheirKeys()
    {
        var provider = Build(new() { ["Guardrails:AccuracyFloor"] = "1.5", ["Guardrails:GoodConfirmations"] = "-1" });
        var e = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<GuardrailOptions>>().Value);
        Assert.Contains("Guardrails:AccuracyFloor", e.Message);
        Assert.Contains("Guardrails:GoodConfirmations", e.Message);
    }
}
