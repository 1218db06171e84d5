using System.Diagnostics;

namespace PrefOnline.Learning.Tests.Tokenization;

/// <summary>
/// Runs gpt2_bpe_reference.py (OpenAI's encoder.py algorithm) or byte_level_bpe_reference.py (a tokenizer.json
/// byte-level BPE as Hugging Face's tokenizers encodes it) with Debian's /usr/bin/python3.
/// A missing interpreter or python3-regex fails the test with the install command; it never skips.
/// </summary>
internal static class PythonReference
{
    public const string Interpreter = "/usr/bin/python3";

    private static readonly string Script = Path.Combine(AppContext.BaseDirectory, "Tokenization", "gpt2_bpe_reference.py");

    private static readonly string TokenizerJsonScript = Path.Combine(AppContext.BaseDirectory, "Tokenization", "byte_level_bpe_reference.py");

    public static string Run(TimeSpan timeout, params string[] arguments) => RunScript(Script, timeout, arguments);

    /// <summary>byte_level_bpe_reference.py's ids for each byte string, with DIRECTORY/tokenizer.json.</summary>
    public static List<int[]> EncodeWithTokenizerJson(string directory, IReadOnlyList<byte[]> cases)
    {
        using var scratch = new TempDirectory();
        var casesPath = Path.Combine(scratch.Path, "cases.txt");
        var outputPath = Path.Combine(scratch.Path, "out.txt");
        File.WriteAllLines(casesPath, cases.Select(Convert.ToHexString));
        RunScript(TokenizerJsonScript, TimeSpan.FromMinutes(3), "encode", directory, casesPath, outputPath);
        var ids = File.ReadLines(outputPath).Select(line => line.Length == 0 ? [] : line.Split(' ').Select(int.Parse).ToArray()).ToList();
        Assert.Equal(cases.Count, ids.Count);
        return ids;
    }

    private static string RunScript(string script, TimeSpan timeout, params string[] arguments)
    {
        if (!File.Exists(Interpreter))
            throw new InvalidOperationException($"{Interpreter} is missing: apt-get install -y python3 python3-regex");
        if (!File.Exists(script)) throw new InvalidOperationException($"reference script not copied to the test output: {script}");

        var start = new ProcessStartInfo(Interpreter)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(script);
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        start.Environment["PYTHONHASHSEED"] = "0";
        start.Environment["PYTHONIOENCODING"] = "utf-8";

        using var process = new Process { StartInfo = start };
        var stdout = new System.Text.StringBuilder();
        var stderr = new System.Text.StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        if (!process.Start()) throw new InvalidOperationException($"could not start {Interpreter}");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"python reference {string.Join(' ', arguments)} did not finish within {timeout}");
        }
        process.WaitForExit(); // drains the redirected streams
        string error, output;
        lock (stderr) error = stderr.ToString();
        lock (stdout) output = stdout.ToString();
        if (process.ExitCode == 3) throw new InvalidOperationException($"python3-regex is missing: apt-get install -y python3-regex ({error.Trim()})");
        if (process.ExitCode != 0) throw new InvalidOperationException($"python reference {string.Join(' ', arguments)} exited {process.ExitCode}: {error}");
        return output;
    }

    /// <summary>encoder.py's ids and decoded text (as UTF-8 bytes, errors="replace") for each byte string, and its encode time in seconds.</summary>
    public static (List<int[]> Ids, List<byte[]> Decoded, double Seconds) Encode(string vocabularyDirectory, IReadOnlyList<byte[]> cases)
    {
        using var scratch = new TempDirectory();
        var casesPath = Path.Combine(scratch.Path, "cases.txt");
        var outputPath = Path.Combine(scratch.Path, "out.txt");
        File.WriteAllLines(casesPath, cases.Select(Convert.ToHexString));
        Run(TimeSpan.FromMinutes(3), "encode", vocabularyDirectory, casesPath, outputPath);

        var ids = new List<int[]>();
        var decoded = new List<byte[]>();
        var seconds = double.NaN;
        foreach (var line in File.ReadLines(outputPath))
        {
            if (line.StartsWith("#seconds=", StringComparison.Ordinal))
            {
                seconds = double.Parse(line["#seconds=".Length..], System.Globalization.CultureInfo.InvariantCulture);
                continue;
            }
            var bar = line.IndexOf('|');
            ids.Add(bar == 0 ? [] : line[..bar].Split(' ').Select(int.Parse).ToArray());
            decoded.Add(Convert.FromHexString(line[(bar + 1)..]));
        }
        Assert.Equal(cases.Count, ids.Count);
        return (ids, decoded, seconds);
    }
}
