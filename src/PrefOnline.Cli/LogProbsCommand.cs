using PrefOnline.Worker.Checkpoints;
using System.CommandLine;
using System.Text.Encodings.Web;
using System.Text.Json;
using PrefOnline.Learning.Models.Checkpoints;
using PrefOnline.Learning.Models.LogProbs;
using PrefOnline.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Cli;

/// <summary><c>prefonline logprobs --checkpoint DIR --prompt P --completion C [--eos]</c>: log π(C | P)
/// under a checkpoint, as JSON: the sum, the per-token mean and each token's value with its text.</summary>
public static class LogProbsCommand
{
    public static Command Create()
    {
        var checkpoint = new Option<string>("--checkpoint") { Description = "A Hugging Face checkpoint directory (GPT-2 or Llama family), a checkpoint store version (vNNNNNN), or a store root (its latest version).", Required = true };
        var prompt = new Option<string>("--prompt") { Description = "Conditioning text (may be empty).", Required = true };
        var completion = new Option<string>("--completion") { Description = "Text whose log-probability is computed.", Required = true };
        var eos = new Option<bool>("--eos") { Description = "Append the end-of-sequence token to the completion (score that it stops there)." };

        var command = new Command("logprobs", "Print the log-probability of a completion given a prompt, in total and per token, as JSON.");
        command.Options.Add(checkpoint);
        command.Options.Add(prompt);
        command.Options.Add(completion);
        command.Options.Add(eos);
        command.SetAction((parse, ct) => CliAction.RunAsync(async token =>
        {
            var directory = parse.GetValue(checkpoint)!;
            var (promptText, completionText, appendEos) = (parse.GetValue(prompt) ?? "", parse.GetValue(completion) ?? "", parse.GetValue(eos));
            using var thread = new TensorThread("tensor");
            var json = await thread.RunAsync(() => Score(directory, promptText, completionText, appendEos), token);
            Console.WriteLine(json);
            return 0;
        }, ct));
        return command;
    }

    private static string Score(string directory, string prompt, string completion, bool appendEos)
    {
        using var policy = StoredPolicy.Load(directory);
        policy.Model.eval();
        var tokenizer = policy.Tokenizer;
        using var batch = SequenceBatch.FromText(tokenizer, [(prompt, completion)], policy.Config.ContextLength, appendEos);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var sum = SequenceLogProbs.Compute(policy.Model, batch, LogProbReduction.Sum);
        var mean = SequenceLogProbs.Reduce(sum.TokenLogProbs, sum.Mask, LogProbReduction.Mean);
        var count = batch.CompletionLengths[0];
        var values = sum.TokenLogProbs.data<float>().ToArray();
        var ids = batch.CompletionTokens.data<long>().ToArray();

        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("checkpoint", policy.Directory);
            w.WriteNumber("prompt_tokens", batch.PromptLengths[0]);
            w.WriteNumber("completion_tokens", count);
            w.WriteNumber("sum_logprob", sum.Values.ToDouble());
            w.WriteNumber("mean_logprob", mean.ToDouble());
            w.WriteNumber("prompt_tokens_dropped", batch.PromptTokensDropped[0]);
            w.WriteBoolean("completion_truncated", batch.CompletionTruncated[0]);
            w.WriteStartArray("tokens");
            for (var j = 0; j < count; j++)
            {
                var id = (int)ids[j];
                w.WriteStartObject();
                w.WriteNumber("id", id);
                w.WriteString("text", tokenizer.SpecialTokenText(id) ?? tokenizer.Decode([id])); // the checkpoint's own name for its end-of-sequence token
                // A byte-level token can be part of a multi-byte character, whose text alone is U+FFFD.
                w.WriteString("bytes", Convert.ToHexStringLower(tokenizer.DecodeBytes([id])));
                w.WriteNumber("logprob", values[j]);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }
}
