using PrefOnline.Learning.Models.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;
using PrefOnline.Tensors;
using PrefOnline.Tensors.Serialization;

namespace PrefOnline.Learning.Models.Reward;

/// <summary>
/// A reward model as one safetensors file in the layout of its family's Hugging Face
/// *ForSequenceClassification (GPT-2: <c>transformer.*</c>; Llama family: <c>model.*</c>; then
/// <c>score.weight</c> and our <c>score.bias</c>), with its config.json text in the metadata. On load, a
/// file without <c>score.bias</c> (written by transformers) gets a zero bias, and old buffers are ignored.
/// </summary>
public static class RewardCheckpoint
{
    public static void Save(string path, RewardModel model)
    {
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["format"] = "pt",
            [PolicyCheckpoint.ConfigMetadataKey] = ModelFamily.Serialize(ModelFamily.Of(model.Config).ToJson(model.Config, ModelRole.SequenceClassification,
                SpecialTokenIds.None, PolicyCheckpoint.OwnSection(), model.Placement.DtypeName)),
        };
        SafeTensorsFile.Write(path, model.state_dict(), metadata);
    }

    /// <param name="config">The trunk's shape when the file's metadata does not carry it.</param>
    /// <param name="placement">Where the model goes (CPU float32 by default); the file's dtype converts to it.</param>
    public static RewardModel Load(string path, DecoderConfig? config = null, TensorPlacement? placement = null)
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
            config = ModelFamily.ParseConfig(text, problems);
            if (config is null || problems.Count > 0) throw new InvalidCheckpointException(path, problems);
        }

        var content = new List<SafeTensorsContent>();
        var model = new RewardModel(config, init: null);
        try
        {
            model.Place(placement ?? TensorPlacement.Cpu);
            using var scope = NewDisposeScope();
            var raw = WeightFiles.ReadFloating([path], content, problems);
            var all = ModelFamily.Of(config).RewardTensors(raw, config, problems);
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
