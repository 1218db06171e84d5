namespace PrefOnline.Worker.Cli;

/// <summary>Temporary entry until the System.CommandLine verbs land.</summary>
public static class CommandLine
{
    public static int Run(string[] args)
    {
        Console.WriteLine($"prefonline: libtorch {PrefOnline.Torch.TorchRuntime.Version}");
        return 0;
    }
}
