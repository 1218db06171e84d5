using PrefOnline.Learning.Replay;

namespace PrefOnline.Learning.TrainingData;

/// <summary>The exact binary form of a <see cref="PreferencePair"/> in replay snapshots (layout version 1).
/// Reading validates the result like any other pair.</summary>
public sealed class PreferencePairSerializer : IReplayItemSerializer<PreferencePair>
{
    public static PreferencePairSerializer Instance { get; } = new();

    private const byte LayoutVersion = 1;

    public void Write(BinaryWriter writer, PreferencePair item)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(item);
        writer.Write(LayoutVersion);
        BinaryFields.WriteString(writer, item.Id);
        BinaryFields.WriteNullableString(writer, item.PromptId);
        BinaryFields.WriteString(writer, item.Prompt);
        BinaryFields.WriteString(writer, item.Chosen);
        BinaryFields.WriteString(writer, item.Rejected);
        BinaryFields.WriteInts(writer, item.PromptTokens);
        BinaryFields.WriteInts(writer, item.ChosenTokens);
        BinaryFields.WriteInts(writer, item.RejectedTokens);
        writer.Write((byte)item.Source);
        BinaryFields.WriteNullableString(writer, item.ChosenRolloutId);
        BinaryFields.WriteNullableString(writer, item.RejectedRolloutId);
        writer.Write(item.RewardGap.HasValue);
        writer.Write(item.RewardGap ?? 0.0);
        writer.Write(item.UpdateCount);
        BinaryFields.WriteTimestamp(writer, item.ReceivedAt);
    }

    public PreferencePair Read(BinaryReader reader)
    {
        ArgumentNullException.ThrowIfNull(reader);
        var layout = reader.ReadByte();
        if (layout != LayoutVersion) throw new InvalidDataException($"preference pair layout version {layout} is not supported (expected {LayoutVersion})");
        var id = BinaryFields.ReadString(reader, "pair.id");
        var promptId = BinaryFields.ReadNullableString(reader, "pair.prompt_id");
        var prompt = BinaryFields.ReadString(reader, "pair.prompt");
        var chosen = BinaryFields.ReadString(reader, "pair.chosen");
        var rejected = BinaryFields.ReadString(reader, "pair.rejected");
        var promptTokens = BinaryFields.ReadInts(reader, "pair.prompt_tokens");
        var chosenTokens = BinaryFields.ReadInts(reader, "pair.chosen_tokens");
        var rejectedTokens = BinaryFields.ReadInts(reader, "pair.rejected_tokens");
        var source = BinaryFields.ReadEnum<PairSource>(reader, "pair.source");
        var chosenRollout = BinaryFields.ReadNullableString(reader, "pair.chosen_rollout_id");
        var rejectedRollout = BinaryFields.ReadNullableString(reader, "pair.rejected_rollout_id");
        var hasGap = reader.ReadBoolean();
        var gap = reader.ReadDouble();
        if (!hasGap && BitConverter.DoubleToInt64Bits(gap) != 0) throw new InvalidDataException("pair.reward_gap is absent but its slot is not zero");
        var pair = new PreferencePair
        {
            Id = id,
            PromptId = promptId,
            Prompt = prompt,
            Chosen = chosen,
            Rejected = rejected,
            PromptTokens = promptTokens,
            ChosenTokens = chosenTokens,
            RejectedTokens = rejectedTokens,
            Source = source,
            ChosenRolloutId = chosenRollout,
            RejectedRolloutId = rejectedRollout,
            RewardGap = hasGap ? gap : null,
            UpdateCount = reader.ReadInt64(),
            ReceivedAt = BinaryFields.ReadTimestamp(reader, "pair.received_at"),
        };
        try
        {
            pair.Validate();
        }
        catch (ArgumentException e)
        {
            throw new InvalidDataException($"stored preference pair is invalid: {e.Message}", e);
        }
        return pair;
    }
}
