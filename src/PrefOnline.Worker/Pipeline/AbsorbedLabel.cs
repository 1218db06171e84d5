namespace PrefOnline.Worker.Pipeline;

/// <summary>One line of the opt-in label audit: a feedback record absorbed into the state, and where it was read.</summary>
/// <param name="Id">The label's id.</param>
/// <param name="Schema">prefonline.preference.v1 or prefonline.rating.v1.</param>
/// <param name="Topic">Source topic.</param>
/// <param name="Partition">Source partition.</param>
/// <param name="Offset">Source offset.</param>
/// <param name="UpdatesBefore">
/// Policy updates the learner had applied when the label was absorbed (null in audits written before this field
/// existed). The first update that can have learnt from it is number <c>UpdatesBefore + 1</c>: its checkpoint is the
/// first whose <c>updates</c> metric exceeds this. A label listed in an update's checkpoint may have been absorbed
/// after that update ran (between the update and its checkpoint), so the checkpoint alone does not say which
/// update applied it; this does.
/// </param>
public sealed record AbsorbedLabel(string Id, string Schema, string Topic, int Partition, long Offset, long? UpdatesBefore = null);
