using PrefOnline.Learning.Guardrails;

namespace PrefOnline.Learning.Tests.Guardrails;

public sealed class GoodCheckpointTrackerTests
{
    [Fact]
    public void AVersionBecomesGoodOnlyAfterItsConfirmations()
    {
        var tracker = new GoodCheckpointTracker(confirmations: 2);
        Assert.Null(tracker.OnEvaluation(1, passed: true));
        Assert.Null(tracker.CheckpointWritten(1));
        Assert.Null(tracker.OnEvaluation(2, passed: true));   // 1 confirmation
        Assert.Null(tracker.GoodVersion);
        Assert.Equal(1, tracker.OnEvaluation(3, passed: true)); // 2 confirmations: proposed
        Assert.Null(tracker.GoodVersion);                       // not good until the pointer is written
        tracker.Marked(1);
        Assert.Equal(1, tracker.GoodVersion);
    }

    [Fact]
    public void AProposalWhoseWriteFailedIsProposedAgainAndNewerOnesOvertakeIt()
    {
        var tracker = new GoodCheckpointTracker(confirmations: 1, initialGood: 0);
        tracker.OnEvaluation(1, true);
        tracker.CheckpointWritten(1);
        Assert.Equal(1, tracker.OnEvaluation(2, true));
        tracker.CheckpointWritten(2);
        Assert.Equal(0, tracker.GoodVersion);                   // the store's write failed: nothing marked
        Assert.Equal(2, tracker.OnEvaluation(3, true));         // proposed again, now the newer confirmed one
        tracker.Marked(2);
        Assert.Equal(2, tracker.GoodVersion);
        Assert.Empty(tracker.PendingVersions);
        tracker.Marked(1);                                      // a late report never moves good back
        Assert.Equal(2, tracker.GoodVersion);
    }

    [Fact]
    public void AFailedEvaluationDiscardsEveryUnconfirmedVersion()
    {
        var tracker = new GoodCheckpointTracker(confirmations: 2, initialGood: 0);
        tracker.OnEvaluation(1, true);
        tracker.CheckpointWritten(1);
        tracker.OnEvaluation(2, true);
        tracker.CheckpointWritten(2);
        Assert.Null(tracker.OnEvaluation(3, passed: false));
        Assert.Empty(tracker.PendingVersions);
        Assert.Null(tracker.OnEvaluation(4, true));
        Assert.Null(tracker.OnEvaluation(5, true));
        Assert.Equal(0, tracker.GoodVersion);
    }

    [Fact]
    public void OnlyCheckpointedVersionsThatPassedTheirOwnEvaluationQualify()
    {
        var tracker = new GoodCheckpointTracker(confirmations: 0);
        tracker.OnEvaluation(1, passed: false);
        Assert.Null(tracker.CheckpointWritten(1));          // failed its own evaluation
        Assert.Null(tracker.CheckpointWritten(7));          // never evaluated
        tracker.OnEvaluation(2, passed: true);
        Assert.Equal(2, tracker.CheckpointWritten(2));      // zero confirmations: proposed at once
        tracker.Marked(2);
        tracker.OnEvaluation(3, passed: true);              // evaluated but never checkpointed
        tracker.OnEvaluation(4, passed: true);
        Assert.Equal(2, tracker.GoodVersion);
    }

    [Fact]
    public void OnlyARollbackMovesGoodBackAndItResetsCandidates()
    {
        var tracker = new GoodCheckpointTracker(confirmations: 1, initialGood: 10);
        tracker.OnEvaluation(11, true);
        tracker.CheckpointWritten(11);
        tracker.RolledBackTo(10);
        Assert.Empty(tracker.PendingVersions);
        Assert.Null(tracker.OnEvaluation(12, true));
        Assert.Equal(10, tracker.GoodVersion);
        tracker.CheckpointWritten(12);
        Assert.Equal(12, tracker.OnEvaluation(13, true));
        tracker.Marked(12);
        tracker.RolledBackTo(7); // an operator rolled back below good: the store moved the pointer back with latest
        Assert.Equal(7, tracker.GoodVersion);
        Assert.Empty(tracker.PendingVersions);
    }

    [Fact]
    public void NothingIsProposedWhileADetectorIsHalfwayToAnAlarm()
    {
        var tracker = new GoodCheckpointTracker(confirmations: 1);
        tracker.OnEvaluation(1, true);
        tracker.CheckpointWritten(1);
        Assert.Null(tracker.OnEvaluation(2, true, hold: true));  // confirmed, but a drift score is >= DriftWarningScore
        tracker.CheckpointWritten(2);
        Assert.Null(tracker.OnEvaluation(3, true, hold: true));
        Assert.Equal(2, tracker.OnEvaluation(4, true));           // the suspicion passed: the newest confirmed version
    }

    [Fact]
    public void VersionsInsideASuspectedChangeWaitEvenWhenConfirmed()
    {
        var tracker = new GoodCheckpointTracker(confirmations: 1);
        tracker.OnEvaluation(1, true);
        tracker.CheckpointWritten(1);
        Assert.Equal(1, tracker.OnEvaluation(2, true, suspectFrom: 2)); // v1 precedes the suspected change
        tracker.Marked(1);
        tracker.CheckpointWritten(2);
        Assert.Null(tracker.OnEvaluation(3, true, suspectFrom: 2));     // v2 confirmed but suspect
        Assert.Equal([2L], tracker.PendingVersions);
        Assert.Equal(2, tracker.OnEvaluation(4, true, suspectFrom: null)); // suspicion cleared
    }
}
