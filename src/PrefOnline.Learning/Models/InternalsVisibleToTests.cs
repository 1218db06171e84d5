using System.Runtime.CompilerServices;

// The model tests reach the checkpoint internals (config JSON mapping, the interim tokenizer seam).
[assembly: InternalsVisibleTo("PrefOnline.Learning.Tests")]
[assembly: InternalsVisibleTo("PrefOnline.Worker.Tests")]
// TODO(#3): drop once `init` uses the tokenizers' public ByteTokenizer.Instance instead of CheckpointTokenizer.Default.
[assembly: InternalsVisibleTo("prefonline")]
