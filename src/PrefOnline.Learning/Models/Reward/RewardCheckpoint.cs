using PrefOnline.Learning.Models.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;
using PrefOnline.Tensors;
using PrefOnline.Tensors.Serialization;

namespace PrefOnline.Learning.Models.Reward;

/// <summary>
/// A reward model as one safetensors file in the layout of Hugging Face's
/// GPT2ForSequenceClassification (<c>transformer.*</c>, <c>score.weight</c>, and our
/// <c>score.bias</c>), with its config.json text in the metadata. On load, a file without
/// <c>score.bias</c> (written by transformers) gets a zero bias, and the attention buffers are ignored.
/// </summary>
public static class RewardCheckpoint
{
    public static void Save(string path, RewardModel model)
    {
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["format"] = "pt",
            [PolicyCheckpoint.ConfigMetadataKey] = Gpt2ConfigJson.Serialize(Gpt2ConfigJson.ToJson(model.Config, "GPT2ForSequenceClassification", null, null,
                torchDtype: model.Placement.DtypeName)),
        };
        SafeTensorsFile.Write(path, model.state_dict(), metadata);
    }

    /// <param name="config">The trunk's shape when the file's metadata does not carry it.</param>
    /// <param name="placement">Where the model goes (CPU float32 by default); the file's dtype converts to it.</param>
    public static RewardModel Load(string path, Gpt2Config? config = null, TensorPlacement? placement = null)
    {
        if (!File.Exists(path)) throw new InvalidCheckpointException(path, "file not found");
        var problems = new List<string>();
        if (config is null)
        {
            SafeTensorsHeader header;
            try
            {
                header = SafeTensorsFile.ReadHeader(path);
            }
            catch (SafeTensorsFormatException e)
            {
                throw new InvalidCheckpointException(path, e.Problem);
            }
            if (!header.Metadata.TryGetValue(PolicyCheckpoint.ConfigMetadataKey, out var text))
                throw new InvalidCheckpointException(path, $"no '{PolicyCheckpoint.ConfigMetadataKey}' metadata: pass the config");
            config = Gpt2ConfigJson.Parse(text, problems);
            if (problems.Count > 0) throw new InvalidCheckpointException(path, problems);
        }

        var content = new List<SafeTensorsContent>();
        var model = new RewardModel(config, init: null);
        try
        {
            model.Place(placement ?? TensorPlacement.Cpu);
            using var scope = NewDisposeScope();
            var raw = WeightFiles.ReadFloating([path], content, problems);
            var extra = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            var trunk = WeightFiles.MapTrunk(raw, "transformer.", prefixRequired: true, extra, problems);
            var all = trunk.ToDictionary(kv => "transformer." + kv.Key, kv => kv.Value, StringComparer.Ordinal);
            foreach (var (name, tensor) in extra) all[name] = tensor;
            if (!all.ContainsKey("score.bias")) all["score.bias"] = zeros([1]);
            if (problems.Count == 0) WeightFiles.Check(model.state_dict(), all, problems);
            if (problems.Count > 0) throw new InvalidCheckpointException(path, problems);
            WeightFiles.CopyInto(model, all);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
        finally
        {
            foreach (var c in content) c.Dispose();
        }
    }
}
