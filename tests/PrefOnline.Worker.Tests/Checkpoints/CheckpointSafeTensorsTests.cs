using PrefOnline.Tensors;
using TorchSharp;
using static TorchSharp.torch;
using TorchSharp.Modules;
using PrefOnline.Tensors.Serialization;
using PrefOnline.Worker.Checkpoints;

namespace PrefOnline.Worker.Tests.Checkpoints;

/// <summary>The store with real model weights: written by SafeTensorsFile on the tensor thread, read back equal.</summary>
public sealed class CheckpointSafeTensorsTests
{
    [Fact]
    public async Task Module_weights_written_through_the_store_load_back_identical()
    {
        using var temp = new TempStore();
        using var thread = new TensorThread("checkpoint-test");
        var (layer, expected) = await thread.RunAsync(() =>
        {
            manual_seed(1234);
            var linear = nn.Linear(16, 8);
            return (linear, linear.named_parameters().ToDictionary(p => p.name, p => p.parameter.data<float>().ToArray()));
        });

        using (var store = await temp.OpenAsync())
        {
            store.StartNewLineage();
            await store.WriteAsync(new CheckpointDraft()
                .AddFileAt("policy.safetensors", (path, ct) => new ValueTask(thread.RunAsync(
                    () => SafeTensorsFile.Write(path, layer.named_parameters().Select(p => KeyValuePair.Create(p.name, (Tensor)p.parameter)), new Dictionary<string, string> { ["format"] = "pt" }), ct)))
                .SetMetric("reward", 0.5));
        }

        var checkpoint = (await temp.Reader().LoadLatestValidAsync()).Checkpoint!;
        var loaded = await thread.RunAsync(() =>
        {
            using var content = SafeTensorsFile.Read(checkpoint.GetPath("policy.safetensors"));
            return content.Tensors.ToDictionary(t => t.Key, t => t.Value.data<float>().ToArray());
        });
        Assert.Equal(expected.Keys.Order(), loaded.Keys.Order());
        foreach (var (name, values) in expected) Assert.Equal(values, loaded[name]);
        Assert.Empty(temp.Reader().FindLeftovers()); // SafeTensorsFile's own temp file was renamed away inside the version
        await thread.RunAsync(layer.Dispose);
    }
}
