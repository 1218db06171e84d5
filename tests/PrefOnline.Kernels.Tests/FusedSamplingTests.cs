using PrefOnline.Learning.Randomness;
using static PrefOnline.Kernels.Tests.KernelTestSupport;

namespace PrefOnline.Kernels.Tests;

/// <summary>
/// The sampling rules of the fused decoder (temperature → top-k → top-p, suppressed ids, end of
/// sequence, stop sequences), its seeded random streams, and how it fails. Expected distributions are
/// computed from the model's own logits.
/// </summary>
public class FusedSamplingTests
{
    public static TheoryData<double, int, double> Rules => new()
    {
        { 1.0, 0, 1.0 },
        { 0.6, 0, 1.0 },
        { 1.7, 0, 1.0 },
        { 1.0, 3, 1.0 },
        { 1.0, 0, 0.7 },
        { 0.8, 4, 0.9 },
    };

    /// <summary>One decode step of a toy model, sampled 20,000 times: the token frequencies follow
    /// softmax(logits / T) restricted to the top-k, then to the top-p nucleus, renormalised.</summary>
    [Theory]
    [MemberData(nameof(Rules))]
    public void Sampled_frequencies_follow_temperature_top_k_and_top_p(double temperature, int topK, double topP)
    {
        var shape = ShapeNamed("toy");
        using var model = SpreadPolicy.Create(shape, seed: 8);
        using var decoder = new FusedGpt2Decoder(shape, model.Weights);
        int[] prompt = [2, 5];
        var logits = model.Logits(prompt).AsSpan(6, 6).ToArray();

        // The rule, written out independently: temperature → top-k → top-p → renormalise.
        var order = Enumerable.Range(0, 6).OrderByDescending(i => logits[i]).ThenBy(i => i).ToArray();
        var max = logits.Max();
        var weight = logits.Select(l => Math.Exp((l - max) / temperature)).ToArray();
        var candidates = topK > 0 ? order.Take(topK).ToArray() : order;
        var total = candidates.Sum(i => weight[i]);
        var kept = new List<int>();
        var cumulative = 0.0;
        foreach (var i in candidates)
        {
            kept.Add(i);
            cumulative += weight[i];
            if (cumulative >= topP * total) break;
        }
        var mass = kept.Sum(i => weight[i]);
        var expected = new double[6];
        foreach (var i in kept) expected[i] = weight[i] / mass;

        const int n = 20_000;
        var rows = decoder.Generate(new FusedDecodeRequest
        {
            Prompts = [prompt], SamplesPerPrompt = n, Temperature = temperature, TopK = topK, TopP = topP, MaxNewTokens = 1,
            RowSeeds = Enumerable.Range(0, n).Select(i => (ulong)i * 7919 + 17).ToArray(),
        });
        var counts = new int[6];
        var policy = LogSoftmax(logits);
        foreach (var row in rows)
        {
            var token = Assert.Single(row.Tokens);
            counts[token]++;
            Assert.True(expected[token] > 0, $"token {token} is outside the kept set {string.Join(",", kept)}");
            Assert.Equal(Math.Log(expected[token]), row.SamplerLogProbs[0], 1e-4);
            Assert.Equal(policy[token], row.PolicyLogProbs[0], 1e-4);
        }
        for (var i = 0; i < 6; i++)
        {
            var frequency = counts[i] / (double)n;
            var sigma = Math.Sqrt(expected[i] * (1 - expected[i]) / n);
            Assert.True(Math.Abs(frequency - expected[i]) <= 5 * sigma + 1e-9,
                $"token {i}: frequency {frequency:F4}, expected {expected[i]:F4} (±{5 * sigma:F4})");
        }
    }

    /// <summary>
    /// The documented draws (native/row_random.h): each sampled token takes the next uniform of the
    /// row's xoshiro256** stream — the product's <see cref="Xoshiro256StarStar"/> from the row's seed —
    /// and walks the candidates in id order without truncation, most likely first with top-k / top-p.
    /// Recomputed here from the model's logits over 2,000 seeds and two tokens per row (draws that land
    /// within 1e-5 of a boundary, where float rounding may decide, are left out: a few at most).
    /// </summary>
    [Theory]
    [InlineData(1.0, 0, 1.0)]
    [InlineData(0.8, 4, 1.0)]
    [InlineData(1.3, 0, 0.8)]
    public void Each_sampled_token_takes_the_next_uniform_of_the_rows_xoshiro_stream(double temperature, int topK, double topP)
    {
        var shape = ShapeNamed("toy");
        using var model = SpreadPolicy.Create(shape, seed: 9);
        using var decoder = new FusedGpt2Decoder(shape, model.Weights);
        int[] prompt = [1, 4, 2];
        const int n = 2000;
        var seeds = Enumerable.Range(0, n).Select(i => 0x9E3779B97F4A7C15UL * (ulong)(i + 1)).ToArray();
        var rows = decoder.Generate(new FusedDecodeRequest
        {
            Prompts = [prompt], SamplesPerPrompt = n, MaxNewTokens = 2, Temperature = temperature, TopK = topK, TopP = topP, RowSeeds = seeds,
        });

        var compared = 0;
        for (var r = 0; r < n; r++)
        {
            var random = new Xoshiro256StarStar(seeds[r]);
            var context = prompt.ToList();
            var skip = false;
            foreach (var sampled in rows[r].Tokens)
            {
                var logits = model.Logits([.. context]).AsSpan((context.Count - 1) * 6, 6).ToArray();
                var (token, nearBoundary) = Draw(logits, temperature, topK, topP, random.NextDouble());
                skip |= nearBoundary;
                if (skip) break;
                Assert.True(token == sampled, $"seed {seeds[r]:X}, token {context.Count - prompt.Length}: the rule gives {token}, the decoder sampled {sampled}");
                context.Add(sampled);
            }
            if (!skip) compared++;
        }
        Assert.True(compared > n - 20, $"only {compared} of {n} rows were away from a boundary");
    }

    /// <summary>The sampling rule written out: temperature → top-k → top-p over the candidates most
    /// likely first (ties: lower id), or every id in id order when nothing truncates.</summary>
    private static (int Token, bool NearBoundary) Draw(float[] logits, double temperature, int topK, double topP, double uniform)
    {
        var max = logits.Max();
        var weight = logits.Select(l => Math.Exp((l - max) / temperature)).ToArray();
        var truncated = topK > 0 || topP < 1;
        var order = truncated ? Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).ThenBy(i => i).ToArray() : Enumerable.Range(0, logits.Length).ToArray();
        if (topK > 0) order = order.Take(topK).ToArray();
        var total = order.Sum(i => weight[i]);
        if (topP < 1)
        {
            var kept = new List<int>();
            var cumulative = 0.0;
            var nucleusEdge = false;
            foreach (var i in order)
            {
                kept.Add(i);
                cumulative += weight[i];
                nucleusEdge |= Math.Abs(cumulative - topP * total) < 1e-5 * total;
                if (cumulative >= topP * total) break;
            }
            if (nucleusEdge) return (-1, true);
            order = [.. kept];
            total = cumulative;
        }
        var u = uniform * total;
        var sum = 0.0;
        var token = -1;
        var near = false;
        foreach (var i in order)
        {
            sum += weight[i];
            near |= Math.Abs(u - sum) < 1e-5 * total;
            if (token < 0 && u < sum) token = i;
        }
        return (token, near);
    }

    [Fact]
    public void Same_seeds_reproduce_and_other_seeds_differ()
    {
        var shape = ShapeNamed("odd");
        using var model = SpreadPolicy.Create(shape, seed: 10);
        using var decoder = new FusedGpt2Decoder(shape, model.Weights);
        FusedDecodeRequest Request(ulong seed) => new()
        {
            Prompts = [Sequence(9, 5, shape.VocabularySize)], SamplesPerPrompt = 4, MaxNewTokens = 40, RowSeeds = [seed, seed + 1, seed + 2, seed + 3],
        };
        var a = decoder.Generate(Request(10));
        var b = decoder.Generate(Request(10));
        var c = decoder.Generate(Request(20));
        Assert.Equal(a.Select(r => r.Tokens), b.Select(r => r.Tokens));
        Assert.Equal(a.Select(r => r.PolicyLogProbs), b.Select(r => r.PolicyLogProbs));
        Assert.NotEqual(a.Select(r => r.Tokens), c.Select(r => r.Tokens));
        Assert.NotEqual(a[0].Tokens, a[1].Tokens); // rows of one prompt are independent samples, not copies
        using var fresh = new FusedGpt2Decoder(shape, model.Weights); // nothing is carried in the decoder
        Assert.Equal(a.Select(r => r.Tokens), fresh.Generate(Request(10)).Select(r => r.Tokens));
    }

    /// <summary>Every compiled kernel set samples the same tokens from the same seeds (their logits differ
    /// by float rounding only, far less than the gaps a draw would have to fall into).</summary>
    [Fact]
    public void Every_kernel_set_samples_the_same_tokens_from_the_same_seeds()
    {
        var shape = ShapeNamed("odd"); // widths off the vector multiples: every tail path
        using var model = SpreadPolicy.Create(shape, seed: 19);
        using var decoder = new FusedGpt2Decoder(shape, model.Weights);
        var request = new FusedDecodeRequest
        {
            Prompts = [Sequence(1, 5, shape.VocabularySize), Sequence(2, 17, shape.VocabularySize)], SamplesPerPrompt = 4, Temperature = 0.8, TopK = 40,
            TopP = 0.9, MaxNewTokens = 30, SuppressedTokens = [100], RowSeeds = Enumerable.Range(0, 8).Select(i => (ulong)i).ToArray(),
        };
        IReadOnlyList<FusedDecodedRow> At(KernelLevel level)
        {
            using var forced = new LevelScope(level);
            return decoder.Generate(request);
        }
        var reference = At(KernelLevel.Avx512);
        foreach (var level in new[] { KernelLevel.Avx2, KernelLevel.Baseline })
        {
            var rows = At(level);
            for (var r = 0; r < rows.Count; r++)
            {
                Assert.Equal(reference[r].Tokens, rows[r].Tokens);
                for (var t = 0; t < rows[r].Tokens.Length; t++)
                {
                    Assert.Equal(reference[r].PolicyLogProbs[t], rows[r].PolicyLogProbs[t], 1e-4);
                    Assert.Equal(reference[r].SamplerLogProbs[t], rows[r].SamplerLogProbs[t], 1e-4);
                }
            }
        }
    }

    [Fact]
    public void Top_k_one_and_a_tiny_top_p_are_greedy_at_any_temperature()
    {
        var shape = ShapeNamed("odd");
        using var model = SpreadPolicy.Create(shape, seed: 11);
        using var decoder = new FusedGpt2Decoder(shape, model.Weights);
        int[][] prompts = [Sequence(1, 3, shape.VocabularySize), Sequence(2, 8, shape.VocabularySize)];
        FusedDecodeRequest Request(double temperature, int topK, double topP) => new()
        {
            Prompts = prompts, SamplesPerPrompt = 3, Temperature = temperature, TopK = topK, TopP = topP, MaxNewTokens = 30, RowSeeds = [1, 2, 3, 4, 5, 6],
        };
        var greedy = decoder.Generate(Request(0, 0, 1));
        foreach (var variant in new[] { Request(1.5, 1, 1), Request(0.7, 1, 1), Request(1.0, 0, 1e-6), Request(3.0, 5, 1e-6) })
        {
            var rows = decoder.Generate(variant);
            for (var r = 0; r < rows.Count; r++)
            {
                Assert.Equal(greedy[r].Tokens, rows[r].Tokens);
                Assert.Equal(greedy[r].PolicyLogProbs, rows[r].PolicyLogProbs);
                Assert.All(rows[r].SamplerLogProbs, v => Assert.Equal(0.0, v, 1e-6)); // a point mass
            }
        }
    }

    [Fact]
    public void Suppressed_tokens_are_never_sampled_but_count_in_the_policy_log_probs()
    {
        var shape = ShapeNamed("toy");
        using var model = SpreadPolicy.Create(shape, seed: 12);
        using var decoder = new FusedGpt2Decoder(shape, model.Weights);
        var logits = model.Logits([2, 5]).AsSpan(6, 6).ToArray();
        var top = ArgMax(logits);
        var policy = LogSoftmax(logits);
        var rows = decoder.Generate(new FusedDecodeRequest
        {
            Prompts = [[2, 5]], SamplesPerPrompt = 2000, MaxNewTokens = 1, SuppressedTokens = [top], RowSeeds = Enumerable.Range(0, 2000).Select(i => (ulong)i).ToArray(),
        });
        var rest = Math.Log(1 - Math.Exp(policy[top])); // the sampler renormalises without the suppressed token
        foreach (var row in rows)
        {
            Assert.NotEqual(top, row.Tokens[0]);
            Assert.Equal(policy[row.Tokens[0]], row.PolicyLogProbs[0], 1e-4);
            Assert.Equal(policy[row.Tokens[0]] - rest, row.SamplerLogProbs[0], 1e-4);
        }
        var greedy = decoder.Generate(new FusedDecodeRequest { Prompts = [[2, 5]], Temperature = 0, MaxNewTokens = 1, SuppressedTokens = [top], RowSeeds = [0] })[0];
        var second = Enumerable.Range(0, 6).Where(i => i != top).OrderByDescending(i => logits[i]).First();
        Assert.Equal(second, greedy.Tokens[0]);
    }

    [Fact]
    public void The_end_of_sequence_token_ends_a_row_and_is_kept()
    {
        var shape = ShapeNamed("odd");
        using var model = SpreadPolicy.Create(shape, seed: 13);
        using var decoder = new FusedGpt2Decoder(shape, model.Weights);
        int[] prompt = [4, 4, 2];
        var free = decoder.Generate(new FusedDecodeRequest { Prompts = [prompt], Temperature = 0, MaxNewTokens = 12, RowSeeds = [0] })[0];
        var eos = free.Tokens[5];
        var stop = Array.IndexOf(free.Tokens, eos);
        var row = decoder.Generate(new FusedDecodeRequest { Prompts = [prompt], Temperature = 0, MaxNewTokens = 12, EndOfSequenceId = eos, RowSeeds = [0] })[0];
        Assert.Equal(FusedDecodeFinish.EndOfSequence, row.Finish);
        Assert.Equal(free.Tokens[..(stop + 1)], row.Tokens);
        Assert.Equal(free.PolicyLogProbs[..(stop + 1)], row.PolicyLogProbs);
        Assert.Equal(FusedDecodeFinish.Length, free.Finish);
    }

    [Fact]
    public void A_stop_sequence_ends_a_row_at_the_token_that_completes_it()
    {
        var shape = ShapeNamed("odd");
        using var model = SpreadPolicy.Create(shape, seed: 14);
        using var decoder = new FusedGpt2Decoder(shape, model.Weights);
        // One letter per id; id 100 is special (no bytes).
        var table = TokenByteTable.Build(shape.VocabularySize, id => id == 100 ? [] : [(byte)('a' + id % 26)]);
        int[] prompt = [1, 2, 3];
        var free = decoder.Generate(new FusedDecodeRequest { Prompts = [prompt], Temperature = 0, MaxNewTokens = 20, RowSeeds = [0] })[0];
        var text = string.Concat(free.Tokens.Select(t => t == 100 ? "" : ((char)('a' + t % 26)).ToString()));
        var stop = text.Substring(6, 2);
        var end = text.IndexOf(stop, StringComparison.Ordinal) + stop.Length; // bytes up to the first occurrence's end
        var completing = 0;
        for (var bytes = 0; bytes < end; completing++) bytes += table[free.Tokens[completing]].Length;

        var row = decoder.Generate(new FusedDecodeRequest
        {
            Prompts = [prompt], Temperature = 0, MaxNewTokens = 20, RowSeeds = [0],
            StopSequences = [System.Text.Encoding.ASCII.GetBytes(stop), "zzzzzz"u8.ToArray()], TokenBytes = table,
        })[0];
        Assert.Equal(FusedDecodeFinish.StopSequence, row.Finish);
        Assert.Equal(free.Tokens[..completing], row.Tokens);
    }

    [Fact]
    public void Invalid_requests_fail_with_a_message_naming_the_problem()
    {
        var shape = ShapeNamed("odd") with { ContextLength = 48 };
        using var model = SpreadPolicy.Create(shape, seed: 15);
        using var decoder = new FusedGpt2Decoder(shape, model.Weights);
        var valid = new FusedDecodeRequest { Prompts = [[1, 2]], MaxNewTokens = 5, RowSeeds = [1] };
        decoder.Generate(valid);

        void Fails<TException>(FusedDecodeRequest request, string expected) where TException : Exception =>
            Assert.Contains(expected, Assert.Throws<TException>(() => decoder.Generate(request)).Message);

        Fails<KernelException>(valid with { Temperature = -1 }, "temperature -1");
        Fails<KernelException>(valid with { Temperature = double.NaN }, "temperature");
        Fails<KernelException>(valid with { TopP = 0 }, "top_p 0");
        Fails<KernelException>(valid with { TopP = 1.5 }, "top_p 1.5");
        Fails<KernelException>(valid with { TopK = -2 }, "top_k -2");
        Fails<KernelException>(valid with { EndOfSequenceId = 101 }, "eos id 101");
        Fails<KernelException>(valid with { Prompts = [[1, 101]] }, "token id 101 at position 1 of sequence 0");
        Fails<KernelException>(valid with { Prompts = [[]] }, "sequence 0 is empty");
        Fails<KernelException>(valid with { Prompts = [new int[44]] }, "exceeds the context of 48");
        Fails<KernelException>(valid with { SuppressedTokens = [101] }, "suppressed token id 101");
        Fails<KernelException>(valid with { SuppressedTokens = Enumerable.Range(0, 101).ToArray() }, "every token is suppressed");
        Fails<ArgumentOutOfRangeException>(valid with { MaxNewTokens = 0 }, "max new tokens");
        Fails<ArgumentOutOfRangeException>(valid with { SamplesPerPrompt = 0 }, "samples per prompt");
        Fails<ArgumentException>(valid with { RowSeeds = [1, 2] }, "2 row seeds given for 1 rows");
        Fails<ArgumentException>(valid with { StopSequences = ["x"u8.ToArray()] }, "TokenByteTable");
        Fails<ArgumentException>(valid with { StopSequences = [[]], TokenBytes = TokenByteTable.Build(101, _ => [1]) }, "stop sequence 0 is empty");
        Fails<ArgumentException>(valid with { Prompts = [] }, "at least one sequence");
        Assert.Contains("token id -1", Assert.Throws<KernelException>(() => decoder.Logits([[0, -1]])).Message);
        // The decoder is still usable after every failure.
        Assert.Equal(decoder.Generate(valid)[0].Tokens, decoder.Generate(valid)[0].Tokens);
    }

    [Fact]
    public void Missing_or_misshapen_weights_fail_naming_the_weight()
    {
        var shape = ShapeNamed("odd");
        using var model = SpreadPolicy.Create(shape, seed: 16);
        var missing = new EditedSource(model.Weights, name => name == "h.1.ln_2.bias" ? throw new KeyNotFoundException("no h.1.ln_2.bias") : null);
        Assert.Contains("h.1.ln_2.bias", Assert.Throws<KeyNotFoundException>(() => new FusedGpt2Decoder(shape, missing)).Message);

        var transposed = new EditedSource(model.Weights, name => name == "h.0.attn.c_attn.weight" ? new KernelTensor(model.Weights.Weight(name).Data, [180, 60]) : null);
        Assert.Contains("h.0.attn.c_attn.weight has shape [180, 60], expected [60, 180]",
            Assert.Throws<KernelException>(() => new FusedGpt2Decoder(shape, transposed)).Message);

        var nullData = new EditedSource(model.Weights, name => name == "ln_f.weight" ? new KernelTensor(IntPtr.Zero, [60]) : null);
        Assert.Contains("ln_f.weight has no data", Assert.Throws<KernelException>(() => new FusedGpt2Decoder(shape, nullData)).Message);

        Assert.Contains("multiple of heads", Assert.Throws<ArgumentException>(() => new FusedGpt2Decoder(shape with { Heads = 7 }, model.Weights)).Message);

        // Checked at every call too: a source that changes after construction is caught before any computation.
        var late = false;
        var changing = new EditedSource(model.Weights, name => late && name == "wpe.weight" ? new KernelTensor(model.Weights.Weight(name).Data, [47, 60]) : null);
        using var decoder = new FusedGpt2Decoder(shape, changing);
        late = true;
        Assert.Contains("wpe.weight has shape [47, 60], expected [48, 60]", Assert.Throws<KernelException>(() => decoder.Logits([[1]])).Message);
    }

    [Fact]
    public void Cancellation_stops_generation()
    {
        var shape = ShapeNamed("tiny");
        using var model = SpreadPolicy.Create(shape, seed: 17);
        using var decoder = new FusedGpt2Decoder(shape, model.Weights);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        var request = new FusedDecodeRequest { Prompts = [[1]], SamplesPerPrompt = 64, MaxNewTokens = 255, RowSeeds = new ulong[64] };
        Assert.Throws<OperationCanceledException>(() => decoder.Generate(request, cancelled.Token));

        // Cancelled while the native loop runs (64 rows × 255 steps takes far longer than 20 ms).
        using var soon = new CancellationTokenSource(TimeSpan.FromMilliseconds(20));
        Assert.Throws<OperationCanceledException>(() => decoder.Generate(request, soon.Token));
        Assert.Single(decoder.Generate(request with { SamplesPerPrompt = 1, MaxNewTokens = 3, RowSeeds = [1] }));
    }

    /// <summary>Decoders on several threads at once: the pool serves one loop at a time and the others
    /// run alone on their own thread; every result is the same as one thread alone.</summary>
    [Fact]
    public async Task Concurrent_decoders_on_several_threads_do_not_interfere()
    {
        var shape = ShapeNamed("tiny");
        using var model = SpreadPolicy.Create(shape, seed: 18);
        var request = new FusedDecodeRequest
        {
            Prompts = Enumerable.Range(0, 4).Select(i => Sequence(i, 4 + i, shape.VocabularySize)).ToArray(), SamplesPerPrompt = 2, MaxNewTokens = 30,
            RowSeeds = Enumerable.Range(0, 8).Select(i => (ulong)i).ToArray(),
        };
        IReadOnlyList<FusedDecodedRow> Run()
        {
            using var decoder = new FusedGpt2Decoder(shape, model.Weights);
            return decoder.Generate(request);
        }
        var expected = Run();
        using var threads = new ThreadsScope(2);
        var concurrent = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(Run)));
        Assert.All(concurrent, rows => Assert.Equal(expected.Select(r => r.Tokens), rows.Select(r => r.Tokens)));
    }

    /// <summary>A weight source that replaces some weights of another (null = keep the original).</summary>
    private sealed class EditedSource(IGpt2WeightSource inner, Func<string, KernelTensor?> edit) : IGpt2WeightSource
    {
        public KernelTensor Weight(string name) => edit(name) ?? inner.Weight(name);
    }
}
