using PrefOnline.Torch.Decoding;

namespace PrefOnline.Torch.Tests.Decoding;

[Collection(NativeMemoryCollection.Name)]
public class Gpt2DecoderTests
{
    private static readonly Gpt2DecoderShape Small = new(Layers: 2, Heads: 2, Width: 32, VocabularySize: 50, ContextLength: 64);

    private static int[] Sequence(int seed, int length, int vocabulary)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => random.Next(vocabulary)).ToArray();
    }

    private static double[] LogSoftmax(ReadOnlySpan<float> logits)
    {
        var max = double.NegativeInfinity;
        foreach (var l in logits) max = Math.Max(max, l);
        var sum = 0.0;
        foreach (var l in logits) sum += Math.Exp(l - max);
        var lse = max + Math.Log(sum);
        var result = new double[logits.Length];
        for (var i = 0; i < logits.Length; i++) result[i] = logits[i] - lse;
        return result;
    }

    [Fact]
    public void Batched_prompts_of_different_lengths_decode_exactly_as_each_prompt_alone()
    {
        using var model = new RandomGpt2(Small, seed: 1);
        using var decoder = new Gpt2Decoder(Small, model.Weights);
        int[][] prompts = [Sequence(1, 1, 50), Sequence(2, 4, 50), Sequence(3, 11, 50), Sequence(4, 7, 50), Sequence(5, 2, 50)];
        const int k = 2;
        ulong[] seeds = Enumerable.Range(0, prompts.Length * k).Select(i => (ulong)(1000 + i)).ToArray();
        var batched = decoder.Generate(new DecodeRequest
        {
            Prompts = prompts, SamplesPerPrompt = k, Temperature = 0.9, TopP = 0.95, MaxNewTokens = 30, EndOfSequenceId = 7, RowSeeds = seeds,
        });
        Assert.Equal(prompts.Length * k, batched.Count);
        for (var p = 0; p < prompts.Length; p++)
        {
            var alone = decoder.Generate(new DecodeRequest
            {
                Prompts = [prompts[p]], SamplesPerPrompt = k, Temperature = 0.9, TopP = 0.95, MaxNewTokens = 30, EndOfSequenceId = 7,
                RowSeeds = seeds[(p * k)..((p + 1) * k)],
            });
            for (var s = 0; s < k; s++)
            {
                var row = batched[p * k + s];
                Assert.Equal((p, s), (row.PromptIndex, row.SampleIndex));
                Assert.Equal(alone[s].Tokens, row.Tokens);
                Assert.Equal(alone[s].PolicyLogProbs, row.PolicyLogProbs);
                Assert.Equal(alone[s].SamplerLogProbs, row.SamplerLogProbs);
                Assert.Equal(alone[s].Finish, row.Finish);
            }
        }
    }

    [Fact]
    public void Same_seeds_reproduce_and_other_seeds_differ()
    {
        using var model = new RandomGpt2(Small, seed: 2);
        using var decoder = new Gpt2Decoder(Small, model.Weights);
        DecodeRequest Request(ulong seed) => new()
        {
            Prompts = [Sequence(9, 5, 50)], SamplesPerPrompt = 4, MaxNewTokens = 40, RowSeeds = [seed, seed + 1, seed + 2, seed + 3],
        };
        var a = decoder.Generate(Request(10));
        var b = decoder.Generate(Request(10));
        var c = decoder.Generate(Request(20));
        Assert.Equal(a.Select(r => r.Tokens), b.Select(r => r.Tokens));
        Assert.NotEqual(a.Select(r => r.Tokens), c.Select(r => r.Tokens));
        // Rows of one prompt are independent samples, not copies.
        Assert.NotEqual(a[0].Tokens, a[1].Tokens);
    }

    [Fact]
    public void A_generator_seeds_the_rows_reproducibly()
    {
        using var model = new RandomGpt2(Small, seed: 3);
        using var decoder = new Gpt2Decoder(Small, model.Weights);
        IReadOnlyList<DecodedSequence> Run(ulong seed)
        {
            using var generator = new Generator(seed);
            return decoder.Generate(new DecodeRequest { Prompts = [[1, 2, 3]], SamplesPerPrompt = 3, MaxNewTokens = 20, Generator = generator });
        }
        Assert.Equal(Run(5).Select(r => r.Tokens), Run(5).Select(r => r.Tokens));
        Assert.NotEqual(Run(5).Select(r => r.Tokens), Run(6).Select(r => r.Tokens));
    }

    [Fact]
    public void Greedy_follows_the_argmax_of_the_full_forward_and_records_the_policy_log_probs()
    {
        using var model = new RandomGpt2(Small, seed: 4);
        using var decoder = new Gpt2Decoder(Small, model.Weights);
        var prompt = Sequence(11, 6, 50);
        var greedy = decoder.Generate(new DecodeRequest { Prompts = [prompt], Temperature = 0, MaxNewTokens = 25, RowSeeds = [0] })[0];
        var full = decoder.Logits([[.. prompt, .. greedy.Tokens]])[0];
        for (var t = 0; t < greedy.Tokens.Length; t++)
        {
            var logits = full.AsSpan((prompt.Length - 1 + t) * 50, 50);
            var argmax = 0;
            for (var v = 1; v < 50; v++)
                if (logits[v] > logits[argmax]) argmax = v;
            Assert.Equal(argmax, greedy.Tokens[t]);
            Assert.Equal(LogSoftmax(logits)[argmax], greedy.PolicyLogProbs[t], 1e-4);
            Assert.Equal(0f, greedy.SamplerLogProbs[t]);
        }
    }

    [Fact]
    public void Top_k_one_and_a_tiny_top_p_are_greedy_at_any_temperature()
    {
        using var model = new RandomGpt2(Small, seed: 5);
        using var decoder = new Gpt2Decoder(Small, model.Weights);
        int[][] prompts = [Sequence(1, 3, 50), Sequence(2, 8, 50)];
        DecodeRequest Request(double temperature, int topK, double topP) => new()
        {
            Prompts = prompts, SamplesPerPrompt = 3, Temperature = temperature, TopK = topK, TopP = topP, MaxNewTokens = 30,
            RowSeeds = [1, 2, 3, 4, 5, 6],
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
    public void At_temperature_one_without_truncation_sampler_and_policy_log_probs_agree()
    {
        using var model = new RandomGpt2(Small, seed: 6);
        using var decoder = new Gpt2Decoder(Small, model.Weights);
        var rows = decoder.Generate(new DecodeRequest { Prompts = [[3, 1, 4]], SamplesPerPrompt = 4, MaxNewTokens = 30, RowSeeds = [1, 2, 3, 4] });
        foreach (var row in rows)
        {
            Assert.Equal(30, row.Tokens.Length);
            for (var t = 0; t < row.Tokens.Length; t++) Assert.Equal(row.PolicyLogProbs[t], row.SamplerLogProbs[t], 1e-4);
        }
    }

    public static TheoryData<double, int, double> Rules => new()
    {
        { 1.0, 0, 1.0 },
        { 0.6, 0, 1.0 },
        { 1.7, 0, 1.0 },
        { 1.0, 3, 1.0 },
        { 1.0, 0, 0.7 },
        { 0.8, 4, 0.9 },
    };

    /// <summary>One decode step of a toy model, sampled 20,000 times: the token frequencies must follow
    /// softmax(logits / T) restricted to the top-k, then to the top-p nucleus, renormalised.</summary>
    [Theory]
    [MemberData(nameof(Rules))]
    public void Sampled_frequencies_follow_temperature_top_k_and_top_p(double temperature, int topK, double topP)
    {
        var shape = new Gpt2DecoderShape(1, 1, 16, 6, 8);
        using var model = new RandomGpt2(shape, seed: 8);
        using var decoder = new Gpt2Decoder(shape, model.Weights);
        int[] prompt = [2, 5];
        var logits = decoder.Logits([prompt])[0].AsSpan(6, 6).ToArray();

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
        var rows = decoder.Generate(new DecodeRequest
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

    [Fact]
    public void Suppressed_tokens_are_never_sampled_but_count_in_the_policy_log_probs()
    {
        var shape = new Gpt2DecoderShape(1, 1, 16, 6, 8);
        using var model = new RandomGpt2(shape, seed: 8);
        using var decoder = new Gpt2Decoder(shape, model.Weights);
        var logits = decoder.Logits([[2, 5]])[0].AsSpan(6, 6).ToArray();
        var top = Array.IndexOf(logits, logits.Max());
        var policy = LogSoftmax(logits);
        var rows = decoder.Generate(new DecodeRequest
        {
            Prompts = [[2, 5]], SamplesPerPrompt = 2000, MaxNewTokens = 1, SuppressedTokens = [top],
            RowSeeds = Enumerable.Range(0, 2000).Select(i => (ulong)i).ToArray(),
        });
        var rest = Math.Log(1 - Math.Exp(policy[top])); // the sampler renormalises without the suppressed token
        foreach (var row in rows)
        {
            Assert.NotEqual(top, row.Tokens[0]);
            Assert.Equal(policy[row.Tokens[0]], row.PolicyLogProbs[0], 1e-4);
            Assert.Equal(policy[row.Tokens[0]] - rest, row.SamplerLogProbs[0], 1e-4);
        }
        var greedy = decoder.Generate(new DecodeRequest { Prompts = [[2, 5]], Temperature = 0, MaxNewTokens = 1, SuppressedTokens = [top], RowSeeds = [0] })[0];
        var second = Enumerable.Range(0, 6).Where(i => i != top).OrderByDescending(i => logits[i]).First();
        Assert.Equal(second, greedy.Tokens[0]);
        Assert.Contains("suppressed token id 6",
            Assert.Throws<TorchException>(() => decoder.Generate(new DecodeRequest { Prompts = [[1]], SuppressedTokens = [6], MaxNewTokens = 1, RowSeeds = [0] })).Message);
    }

    [Fact]
    public void Every_kernel_set_samples_the_same_tokens_from_the_same_seeds()
    {
        var shape = new Gpt2DecoderShape(2, 3, 60, 101, 64); // widths off the vector multiples: every tail path
        using var model = new RandomGpt2(shape, seed: 18);
        using var decoder = new Gpt2Decoder(shape, model.Weights);
        var request = new DecodeRequest
        {
            Prompts = [Sequence(1, 5, 101), Sequence(2, 17, 101)], SamplesPerPrompt = 4, Temperature = 0.8, TopK = 40, TopP = 0.9, MaxNewTokens = 30,
            SuppressedTokens = [100], RowSeeds = Enumerable.Range(0, 8).Select(i => (ulong)i).ToArray(),
        };
        var best = Gpt2Decoder.Kernels;
        var reference = decoder.Generate(request);
        try
        {
            for (var level = best - 1; level >= Gpt2KernelLevel.Baseline; level--)
            {
                Assert.Equal(level, Gpt2Decoder.SelectKernels(level));
                var rows = decoder.Generate(request);
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
        finally
        {
            Gpt2Decoder.SelectKernels(best);
        }
        Assert.Equal(best, Gpt2Decoder.SelectKernels(Gpt2KernelLevel.Avx512)); // asking for more than the CPU has gives its best
    }

    [Fact]
    public async Task Several_threads_decode_exactly_as_one_and_concurrent_decoders_do_not_interfere()
    {
        // Wide enough that the layers are split across threads (over 1M multiply-adds each).
        var shape = new Gpt2DecoderShape(2, 4, 256, 300, 64);
        using var model = new RandomGpt2(shape, seed: 19);
        var request = new DecodeRequest
        {
            Prompts = Enumerable.Range(0, 8).Select(i => Sequence(i, 3 + 2 * i, 300)).ToArray(), SamplesPerPrompt = 2, Temperature = 0.9, TopP = 0.95,
            MaxNewTokens = 20, RowSeeds = Enumerable.Range(0, 16).Select(i => (ulong)i).ToArray(),
        };
        async Task<(IReadOnlyList<DecodedSequence> Rows, float[] Logits)> Run(int threads)
        {
            using var thread = new TensorThread($"decode-{threads}", intraOpThreads: threads);
            return await thread.RunAsync(() =>
            {
                using var decoder = new Gpt2Decoder(shape, model.Weights);
                return (decoder.Generate(request), decoder.Logits(request.Prompts)[7]);
            });
        }
        var one = await Run(1);
        var two = await Run(2);
        var three = await Run(3);
        foreach (var other in new[] { two, three })
        {
            Assert.Equal(one.Logits, other.Logits);
            Assert.Equal(one.Rows.Select(r => r.Tokens), other.Rows.Select(r => r.Tokens));
            Assert.Equal(one.Rows.Select(r => r.PolicyLogProbs), other.Rows.Select(r => r.PolicyLogProbs));
        }
        // Two decoders at once on two threads: the shared helper pool serves one, the other runs alone.
        var concurrent = await Task.WhenAll(Run(2), Run(2), Run(2));
        Assert.All(concurrent, c => Assert.Equal(one.Rows.Select(r => r.Tokens), c.Rows.Select(r => r.Tokens)));
    }

    [Fact]
    public void The_end_of_sequence_token_ends_a_row_and_is_kept()
    {
        using var model = new RandomGpt2(Small, seed: 9);
        using var decoder = new Gpt2Decoder(Small, model.Weights);
        int[] prompt = [4, 4, 2];
        var free = decoder.Generate(new DecodeRequest { Prompts = [prompt], Temperature = 0, MaxNewTokens = 12, RowSeeds = [0] })[0];
        var eos = free.Tokens[5];
        var stop = Array.IndexOf(free.Tokens, eos);
        var row = decoder.Generate(new DecodeRequest { Prompts = [prompt], Temperature = 0, MaxNewTokens = 12, EndOfSequenceId = eos, RowSeeds = [0] })[0];
        Assert.Equal(DecodeFinish.EndOfSequence, row.Finish);
        Assert.Equal(free.Tokens[..(stop + 1)], row.Tokens);
        Assert.Equal(free.PolicyLogProbs[..(stop + 1)], row.PolicyLogProbs);
        Assert.Equal(DecodeFinish.Length, free.Finish);
    }

    [Fact]
    public void A_stop_sequence_ends_a_row_at_the_token_that_completes_it()
    {
        using var model = new RandomGpt2(Small, seed: 10);
        using var decoder = new Gpt2Decoder(Small, model.Weights);
        // One letter per id; id 49 is special (no bytes).
        var table = TokenByteTable.Build(50, id => id == 49 ? [] : [(byte)('a' + id % 26)]);
        int[] prompt = [1, 2, 3];
        var free = decoder.Generate(new DecodeRequest { Prompts = [prompt], Temperature = 0, MaxNewTokens = 20, RowSeeds = [0] })[0];
        var text = string.Concat(free.Tokens.Select(t => t == 49 ? "" : ((char)('a' + t % 26)).ToString()));
        var stop = text.Substring(6, 2);
        var end = text.IndexOf(stop, StringComparison.Ordinal) + stop.Length; // bytes up to the first occurrence's end
        var completing = 0;
        for (var bytes = 0; bytes < end; completing++) bytes += table[free.Tokens[completing]].Length;

        var row = decoder.Generate(new DecodeRequest
        {
            Prompts = [prompt], Temperature = 0, MaxNewTokens = 20, RowSeeds = [0],
            StopSequences = [System.Text.Encoding.ASCII.GetBytes(stop), "zzzzzz"u8.ToArray()], TokenBytes = table,
        })[0];
        Assert.Equal(DecodeFinish.StopSequence, row.Finish);
        Assert.Equal(free.Tokens[..completing], row.Tokens);
    }

    [Fact]
    public void In_place_weight_updates_are_seen_by_the_next_call()
    {
        using var model = new RandomGpt2(Small, seed: 11);
        using var decoder = new Gpt2Decoder(Small, model.Weights);
        int[][] sequence = [Sequence(3, 9, 50)];
        var before = decoder.Logits(sequence)[0];

        // What an optimizer step does: update the parameters in place.
        model.Weights["h.1.mlp.c_fc.weight"].MulInPlace(1.5);
        using (var scope = DisposeScope.Enter())
        using (var generator = new Generator(3))
            model.Weights["wte.weight"].AddInPlace(Tensor.Randn([50, 32], generator), 0.1);
        var after = decoder.Logits(sequence)[0];
        Assert.NotEqual(before, after);

        var copies = model.Weights.ToDictionary(kv => kv.Key, kv => kv.Value.Clone().DetachFromScope());
        try
        {
            using var fresh = new Gpt2Decoder(Small, copies);
            Assert.Equal(fresh.Logits(sequence)[0], after);
            Assert.True(decoder.Holds(model.Weights));
            Assert.False(decoder.Holds(copies));
            Assert.False(fresh.Holds(model.Weights));
        }
        finally
        {
            foreach (var t in copies.Values) t.Dispose();
        }
    }

    [Fact]
    public void The_decoder_keeps_its_weights_alive_after_the_owner_disposes_them()
    {
        var baseline = TorchRuntime.LiveTensors;
        Gpt2Decoder decoder;
        float[] before;
        using (var model = new RandomGpt2(Small, seed: 12))
        {
            decoder = new Gpt2Decoder(Small, model.Weights);
            before = decoder.Logits([[1, 2, 3]])[0];
        }
        using (decoder)
        {
            Assert.Equal(baseline, TorchRuntime.LiveTensors);
            Assert.Equal(before, decoder.Logits([[1, 2, 3]])[0]);
        }
    }

    [Fact]
    public void Weights_may_carry_the_transformer_prefix()
    {
        using var model = new RandomGpt2(Small, seed: 13);
        var prefixed = model.Weights.ToDictionary(kv => "transformer." + kv.Key, kv => kv.Value);
        using var a = new Gpt2Decoder(Small, model.Weights);
        using var b = new Gpt2Decoder(Small, prefixed);
        Assert.Equal(a.Logits([[5, 6]])[0], b.Logits([[5, 6]])[0]);
    }

    [Fact]
    public void Missing_or_misshapen_weights_fail_at_construction_naming_the_tensor()
    {
        using var model = new RandomGpt2(Small, seed: 14);
        var missing = model.Weights.Where(kv => kv.Key != "h.1.ln_2.bias").ToDictionary();
        Assert.Contains("h.1.ln_2.bias", Assert.Throws<ArgumentException>(() => new Gpt2Decoder(Small, missing)).Message);

        using var scope = DisposeScope.Enter();
        var wrongShape = new Dictionary<string, Tensor>(model.Weights) { ["h.0.attn.c_attn.weight"] = Tensor.Zeros([96, 32]) };
        var e = Assert.Throws<TorchException>(() => new Gpt2Decoder(Small, wrongShape));
        Assert.Contains("h.0.attn.c_attn.weight has shape [96, 32], expected [32, 96]", e.Message);

        var wrongType = new Dictionary<string, Tensor>(model.Weights) { ["ln_f.weight"] = Tensor.Zeros([32], ScalarType.Float64) };
        Assert.Contains("float32", Assert.Throws<TorchException>(() => new Gpt2Decoder(Small, wrongType)).Message);

        Assert.Contains("multiple of heads", Assert.Throws<ArgumentException>(() => new Gpt2Decoder(Small with { Heads = 3 }, model.Weights)).Message);
    }

    [Fact]
    public void Invalid_requests_fail_with_a_message_naming_the_problem()
    {
        using var model = new RandomGpt2(Small, seed: 15);
        using var decoder = new Gpt2Decoder(Small, model.Weights);
        var valid = new DecodeRequest { Prompts = [[1, 2]], MaxNewTokens = 5, RowSeeds = [1] };
        decoder.Generate(valid);

        void Fails<TException>(DecodeRequest request, string expected) where TException : Exception =>
            Assert.Contains(expected, Assert.Throws<TException>(() => decoder.Generate(request)).Message);

        Fails<TorchException>(valid with { Temperature = -1 }, "temperature -1");
        Fails<TorchException>(valid with { Temperature = double.NaN }, "temperature");
        Fails<TorchException>(valid with { TopP = 0 }, "top_p 0");
        Fails<TorchException>(valid with { TopP = 1.5 }, "top_p 1.5");
        Fails<TorchException>(valid with { TopK = -2 }, "top_k -2");
        Fails<TorchException>(valid with { EndOfSequenceId = 50 }, "eos id 50");
        Fails<TorchException>(valid with { Prompts = [[1, 50]] }, "token id 50 at position 1 of sequence 0");
        Fails<TorchException>(valid with { Prompts = [[]] }, "sequence 0 is empty");
        Fails<TorchException>(valid with { Prompts = [new int[60]] }, "exceeds the context of 64");
        Fails<ArgumentOutOfRangeException>(valid with { MaxNewTokens = 0 }, "max new tokens");
        Fails<ArgumentOutOfRangeException>(valid with { SamplesPerPrompt = 0 }, "samples per prompt");
        Fails<ArgumentException>(valid with { RowSeeds = [1, 2] }, "2 row seeds given for 1 rows");
        Fails<ArgumentException>(valid with { RowSeeds = null }, "RowSeeds or a Generator");
        Fails<ArgumentException>(valid with { StopSequences = ["x"u8.ToArray()] }, "TokenByteTable");
        Fails<ArgumentException>(valid with { Prompts = [] }, "at least one sequence");
        // The decoder is still usable after every failure.
        Assert.Equal(decoder.Generate(valid)[0].Tokens, decoder.Generate(valid)[0].Tokens);
    }

    [Fact]
    public void Cancellation_stops_generation()
    {
        var shape = new Gpt2DecoderShape(4, 4, 128, 258, 256);
        using var model = new RandomGpt2(shape, seed: 16);
        using var decoder = new Gpt2Decoder(shape, model.Weights);
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        var request = new DecodeRequest { Prompts = [[1]], SamplesPerPrompt = 64, MaxNewTokens = 255, Generator = null, RowSeeds = new ulong[64] };
        Assert.Throws<OperationCanceledException>(() => decoder.Generate(request, cancelled.Token));

        // Cancelled while the native loop runs (64 rows × 255 steps takes far longer than 20 ms).
        using var soon = new CancellationTokenSource(TimeSpan.FromMilliseconds(20));
        Assert.Throws<OperationCanceledException>(() => decoder.Generate(request, soon.Token));
        Assert.Single(decoder.Generate(request with { SamplesPerPrompt = 1, MaxNewTokens = 3, RowSeeds = [1] }));
    }

    [Fact]
    public void Generation_creates_no_tensors_and_frees_everything_on_dispose()
    {
        var baseline = TorchRuntime.LiveTensors;
        using (var model = new RandomGpt2(Small, seed: 17))
        using (var decoder = new Gpt2Decoder(Small, model.Weights))
        {
            var during = TorchRuntime.LiveTensors;
            for (var i = 0; i < 50; i++)
                decoder.Generate(new DecodeRequest { Prompts = [[1, 2], [3]], SamplesPerPrompt = 3, MaxNewTokens = 16, RowSeeds = new ulong[6] });
            Assert.Equal(during, TorchRuntime.LiveTensors);
        }
        Assert.Equal(baseline, TorchRuntime.LiveTensors);
    }
}
