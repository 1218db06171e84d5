using PrefOnline.Learning.Models;
using PrefOnline.Learning.Sampling;
using PrefOnline.Learning.Tokenization;
using PrefOnline.Tensors;
using TorchSharp;
using static TorchSharp.torch;

namespace PrefOnline.Worker.Pipeline;

/// <summary>
/// Role generator's policy: the version the policy topic last named, loaded from the checkpoint file the
/// event points to. A new version of the same shape is copied into the existing weights (the sampler
/// shares them, so the next batch samples from it); a different shape replaces model and sampler. Every
/// model adopted is placed on <paramref name="placement"/> (Model:Device, Model:Dtype) first. Every
/// member runs on the tensor thread (checked).
/// </summary>
public sealed class FollowedPolicy(TensorThread thread, TimeProvider time, TensorPlacement placement, PolicyDecoderFactory decoders)
    : IRolloutGenerator, IDisposable
{
    private readonly TaskCompletionSource loaded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private PolicyModel? model;
    private ITokenizer? tokenizer;
    private PolicySampler? sampler;

    /// <summary>The published version being sampled (-1 before the first load).</summary>
    public long Version { get; private set; } = -1;

    /// <summary>SHA-256 of the loaded policy file (null for an initial policy loaded from a directory).</summary>
    public string? Sha256 { get; private set; }

    /// <summary>Completes when a first policy is loaded.</summary>
    public Task Loaded => loaded.Task;

    /// <summary>Adopts <paramref name="next"/> (ownership passes here) as <paramref name="version"/>.</summary>
    public void Adopt(PolicyModel next, ITokenizer nextTokenizer, long version, string? sha256)
    {
        thread.VerifyAccess();
        try
        {
            next.Place(placement);
        }
        catch
        {
            next.Dispose();
            throw;
        }
        if (model is not null && model.Config == next.Config && tokenizer?.VocabularySize == nextTokenizer.VocabularySize && tokenizer.GetType() == nextTokenizer.GetType())
        {
            try
            {
                using var scope = NewDisposeScope();
                StateDicts.Load(model, next.state_dict());
            }
            finally
            {
                next.Dispose();
            }
        }
        else
        {
            sampler?.Dispose();
            model?.Dispose();
            model = next;
            model.eval();
            tokenizer = nextTokenizer;
            sampler = PolicySampler.Create(model, nextTokenizer, () => Version, decoders);
        }
        Version = version;
        Sha256 = sha256;
        loaded.TrySetResult();
    }

    public Task<GeneratedBatch?> GenerateAsync(IReadOnlyList<PromptWork> prompts, SamplingOptions options, CancellationToken cancellationToken) =>
        thread.RunAsync(() =>
        {
            if (sampler is null) return null;
            var completions = sampler.Sample(prompts.Select(p => p.Prompt.Prompt).ToList(), options, cancellationToken);
            var k = options.SamplesPerPrompt;
            var generated = prompts.Select((p, i) => new GeneratedPrompt(p, completions.Skip(i * k).Take(k).ToList(), [])).ToList();
            return (GeneratedBatch?)new GeneratedBatch(generated, Version, 0, time.GetUtcNow());
        }, cancellationToken);

    public void Dispose()
    {
        sampler?.Dispose();
        model?.Dispose();
    }
}
