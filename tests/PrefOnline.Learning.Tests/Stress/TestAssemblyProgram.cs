namespace PrefOnline.Learning.Tests.Stress;

/// <summary>
/// The test assembly's entry point (GenerateProgramFile is off in the project): tests that must survive a
/// crash of what they exercise run this assembly again as a child process with a verb. The test runner
/// never calls it.
/// </summary>
internal static class TestAssemblyProgram
{
    public static int Main(string[] args) => args switch
    {
        [ScalarLifetimeStress.Verb, ..] => ScalarLifetimeStress.Run(args),
        _ => Usage(),
    };

    private static int Usage()
    {
        Console.Error.WriteLine($"usage: dotnet PrefOnline.Learning.Tests.dll {ScalarLifetimeStress.Verb} SECONDS");
        return 2;
    }
}
