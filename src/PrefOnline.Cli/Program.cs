// The `prefonline` binary: one System.CommandLine root (CommandLineApp.cs), verbs defined one per file beside it.
return await PrefOnline.Cli.CommandLineApp.RunAsync(args);
