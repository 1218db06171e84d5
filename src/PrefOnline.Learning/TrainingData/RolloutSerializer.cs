using PrefOnline.Learning.Replay;

namespace PrefOnline.Learning.TrainingData;

/// <summary>The exact binary form of a <see cref="Rollout"/> in replay snapshots (layout version 1;
/// field order is the record's). Reading validates the result like any other rollout.</summary>
public sealed class RolloutSerializer : IReplayItemSerializer<Rollout>
{
    public static RolloutSerializer Instance { get; } = new();

    private const byte LayoutVersion = 1;

    public void Write(BinaryWriter writer, Rollout item)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(item);
        writer.Write(LayoutVersion);
        BinaryFields.WriteString(writer, item.Id);
        BinaryFields.WriteString(writer, item.PromptId);
        BinaryFields.WriteString(writer, item.Prompt);
        BinaryFields.WriteString(writer, item.Completion);
        BinaryFields.WriteInts(writer, item.PromptTokens);
        BinaryFields.WriteInts(writer, item.CompletionTokens);
        BinaryFields.WriteFloats(writer, item.BehaviourLogProbs);
        writer.Write(item.Reward);
        writer.Write((byte)item.RewardSource);
        writer.Write(item.UpdateCount);
        BinaryFields.WriteTimestamp(writer, item.GeneratedAt);
        BinaryFields.WriteTimestamp(writer, item.ScoredAt);
    }

    public Rollout Read(BinaryReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var layout = reader.ReadByte();
        if (layout != LayoutVersion) throw new InvalidDataException($"rollout layout version {layout} is not supported (expected {LayoutVersion})");
        var rollout = new Rollout
        {
            Id = BinaryFields.ReadString(reader, "rollout.id"),
            PromptId = BinaryFields.ReadString(reader, "rollout.prompt_id"),
            Prompt = BinaryFields.ReadString(reader, "rollout.prompt"),
            Completion = BinaryFields.ReadString(reader, "rollout.completion"),
            PromptTokens = BinaryFields.ReadInts(reader, "rollout.prompt_tokens"),
            CompletionTokens = BinaryFields.ReadInts(reader, "rollout.completion_tokens"),
            BehaviourLogProbs = BinaryFields.ReadFloats(reader, "rollout.behaviour_logprobs"),
            Reward = reader.ReadDouble(),
            RewardSource = BinaryFields.ReadEnum<RewardSource>(reader, "rollout.reward_source"),
            UpdateCount = reader.ReadInt64(),
            GeneratedAt = BinaryFields.ReadTimestamp(reader, "rollout.generated_at"),
            ScoredAt = BinaryFields.ReadTimestamp(reader, "rollout.scored_at"),
        };
        try
        {
            rollout.Validate();
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"stored rollout is invalid: {e.Message}", e);
        }
        return rollout;
    }
}
