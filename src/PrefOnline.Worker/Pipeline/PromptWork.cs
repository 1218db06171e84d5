using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Transport;

namespace PrefOnline.Worker.Pipeline;

/// <summary>A validated prompt on its way to generation, with the record it came from (completed in the offset tracker once absorbed).</summary>
public sealed record PromptWork(PromptRecord Prompt, ConsumedRecord Source);
