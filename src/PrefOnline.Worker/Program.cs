// Entry point of the `prefonline` binary; the CLI verbs are wired in Cli/ (issue 3 onwards).
return PrefOnline.Worker.Cli.CommandLine.Run(args);
