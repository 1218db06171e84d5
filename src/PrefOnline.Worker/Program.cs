// The `prefonline` binary: one System.CommandLine root, verbs defined one per file in Cli/.
return await PrefOnline.Worker.Cli.CommandLineApp.RunAsync(args);
