using PrefOnline.Worker.Checkpoints;
using System.CommandLine;
using System.Security.Cryptography;
using System.Text.Encodings.Web;
using System.Text.Json;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Sampling;
using PrefOnline.Tensors;

namespace PrefOnline.Cli;

/// <summary>
/// <c>prefonline generate --checkpoint DIR --prompt TEXT [-n N] [--temperature T] [--top-p P]
/// [--top-k K] [--max-new-tokens M] [--seed S] [--stop STRING]... [--json]</c>: samples completions
/// of a prompt from a checkpoint with the fused native sampler. Prints the completions as text, or
/// with <c>--json</c> one JSON document with tokens, per-token log-probs and finish reasons. The seed
/// is always reported, so any run can be repeated exactly.
/// </summary>
public static class GenerateCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "A Hugging Face checkpoint directory (GPT-2 or Llama family), a checkpoint store version (vNNNNNN), or a store root (its latest version).", Required = true };
        var prompt = new Option<string>("--prompt") { Description = "Text to continue (may be empty).", Required = true };
        var samples = new Option<int>("-n", "--samples") { Description = "Completions to sample.", DefaultValueFactory = _ => 1 };
        var temperature = new Option<double>("--temperature") { Description = "Softmax temperature; 0 = greedy.", DefaultValueFactory = _ => 1.0 };
        var topP = new Option<double>("--top-p") { Description = "Nucleus sampling mass in (0, 1]; 1 = off.", DefaultValueFactory = _ => 1.0 };
        var topK = new Option<int>("--top-k") { Description = "Sample among the k most likely tokens; 0 = off.", DefaultValueFactory = _ => 0 };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Most tokens per completion.", DefaultValueFactory = _ => 64 };
        var seed = new Option<ulong?>("--seed") { Description = "Seed (same seed, checkpoint and options: same completions). Default: random, and printed." };
        var stop = new Option<string[]>("--stop") { Description = "Stop string (repeatable): a completion ends before its first occurrence." };
        var json = new Option<bool>("--json") { Description = "Print one JSON document with tokens, log-probs and finish reasons." };

        var command = new Command("generate", "Sample completions of a prompt from a checkpoint.");
        foreach (var option in new Option[] { checkpoint, prompt, samples, temperature, topP, topK, maxNew, seed, stop, json }) command.Options.Add(option);
        command.SetAction((parse, ct) => CliAction.RunAsync(async token =>
        {
            var directory = parse.GetValue(checkpoint)!;
            var text = parse.GetValue(prompt) ?? "";
            var options = new SamplingOptions
            {
                SamplesPerPrompt = parse.GetValue(samples),
                Temperature = parse.GetValue(temperature),
                TopP = parse.GetValue(topP),
                TopK = parse.GetValue(topK),
                MaxNewTokens = parse.GetValue(maxNew),
                StopStrings = parse.GetValue(stop) ?? [],
                Seed = parse.GetValue(seed) ?? RandomSeed(),
            };
            var asJson = parse.GetValue(json);
            // Options that are wrong whatever the checkpoint fail before it is loaded.
            if (options.Problems() is { Count: > 0 } problems) throw new CliException(string.Join("; ", problems), CliAction.UsageError);

            using var thread = new TensorThread("tensor");
            var output = await thread.RunAsync(() => Sample(directory, text, options, asJson, token), token);
            Console.Write(output);
            // The JSON carries the seed; with plain text it goes to stderr, so stdout stays the completion.
            if (!asJson && parse.GetValue(seed) is null) await Console.Error.WriteLineAsync($"prefonline: seed {options.Seed} (repeat with --seed {options.Seed})");
            return 0;
        }, ct));
        return command;
    }

    private static string Sample(string directory, string prompt, SamplingOptions options, bool json, CancellationToken cancellationToken)
    {
        using var policy = StoredPolicy.Load(directory);
        var context = policy.Config.ContextLength;
        if (options.Problems(context) is { Count: > 0 } problems)
            throw new CliException($"{string.Join("; ", problems)} (checkpoint {policy.Directory})", CliAction.UsageError);
        using var sampler = PolicySampler.Create(policy.Model, policy.Tokenizer);
        var completions = sampler.Sample([prompt], options, cancellationToken);
        return json ? Json(policy.Directory, prompt, options, completions, policy.Tokenizer) : Text(completions);
    }

    private static string Text(IReadOnlyList<SampledCompletion> completions)
    {
        if (completions.Count == 1) return completions[0].Text + Environment.NewLine;
        var writer = new StringWriter();
        foreach (var c in completions)
        {
            writer.WriteLine($"--- sample {c.SampleIndex + 1}/{completions.Count} ({JsonName(c.FinishReason)}, {c.Tokens.Length} tokens, log-prob {c.LogProb:F3}) ---");
            writer.WriteLine(c.Text);
        }
        return writer.ToString();
    }

    private static string Json(string directory, string prompt, SamplingOptions options, IReadOnlyList<SampledCompletion> completions,
        Learning.Tokenization.ITokenizer tokenizer)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("checkpoint", directory);
            w.WriteString("prompt", prompt);
            w.WriteNumber("prompt_tokens", completions[0].PromptTokens.Length);
            w.WriteBoolean("prompt_truncated", completions[0].PromptTruncated);
            w.WriteNumber("seed", options.Seed!.Value);
            w.WriteNumber("temperature", options.Temperature);
            w.WriteNumber("top_p", options.TopP);
            w.WriteNumber("top_k", options.TopK);
            w.WriteNumber("max_new_tokens", options.MaxNewTokens);
            w.WriteStartArray("samples");
            foreach (var c in completions)
            {
                w.WriteStartObject();
                w.WriteNumber("index", c.SampleIndex);
                w.WriteString("text", c.Text);
                w.WriteString("finish_reason", JsonName(c.FinishReason));
                w.WriteNumber("logprob", c.LogProb);
                w.WriteNumber("sampler_logprob", c.SamplerLogProb);
                w.WriteNumber("policy_version", c.PolicyVersion);
                w.WriteStartArray("tokens");
                for (var t = 0; t < c.Tokens.Length; t++)
                {
                    var id = c.Tokens[t];
                    w.WriteStartObject();
                    w.WriteNumber("id", id);
                    w.WriteString("text", tokenizer.SpecialTokenText(id) ?? tokenizer.Decode([id])); // the checkpoint's own name for its end-of-sequence token
                    w.WriteNumber("logprob", c.PolicyLogProbs[t]);
                    w.WriteNumber("sampler_logprob", c.SamplerLogProbs[t]);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray()) + Environment.NewLine;
    }

    private static string JsonName(FinishReason reason) => JsonSerializer.Serialize(reason).Trim('"');

    private static ulong RandomSeed()
    {
        Span<byte> bytes = stackalloc byte[8];
        RandomNumberGenerator.Fill(bytes);
        // Below 2^53 so the printed seed survives JSON readers that hold numbers as doubles.
        return BitConverter.ToUInt64(bytes) >> 11;
    }
}
