namespace PrefOnline.Torch.Tests.Helpers;

internal static class LiveTensorCounter
{
    /// <summary>Runs the finalizers of tensors earlier tests dropped without disposing, so a baseline
    /// of <see cref="TorchRuntime.LiveTensors"/> taken afterwards does not drift down under a test.</summary>
    public static void SettleFinalizers()
    {
        for (var i = 0; i < 2; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
    }
}
