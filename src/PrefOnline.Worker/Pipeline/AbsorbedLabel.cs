namespace PrefOnline.Worker.Pipeline;

/// <summary>One line of the opt-in label audit: a feedback record absorbed into the state, and where it was read.</summary>
/// <param name="Id">The label's id.</param>
/// <param name="Schema">prefonline.preference.v1 or prefonline.rating.v1.</param>
/// <param name="Topic">Source topic.</param>
/// <param name="Partition">Source partition.</param>
/// <param name="Offset">Source offset.</param>
public sealed record AbsorbedLabel(string Id, string Schema, string Topic, int Partition, long Offset);
