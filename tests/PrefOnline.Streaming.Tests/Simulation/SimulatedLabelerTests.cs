using PrefOnline.Streaming.Contracts;
using PrefOnline.Streaming.Simulation;

namespace PrefOnline.Streaming.Tests.Simulation;

public sealed class SimulatedLabelerTests
{
    private static RolloutRecord Rollout(string id, string completion) => new(id, "p-1", "Q?", completion, 0, -1);

    [Fact]
    public void The_same_seed_gives_the_same_labels()
    {
        var group = new[] { Rollout("r-1", "a"), Rollout("r-2", "bbbbbbbb"), Rollout("r-3", "cc"), Rollout("r-4", "ddddd") };
        var options = new SimulatedUsersOptions { LabelMode = LabelMode.Both, PairsPerGroup = 3 };
        var a = new SimulatedLabeler(options, 42).Label(group, new LengthPreference());
        var b = new SimulatedLabeler(options, 42).Label(group, new LengthPreference());
        Assert.Equal(a.Select(RecordSerializer.Serialize).Select(Convert.ToBase64String), b.Select(RecordSerializer.Serialize).Select(Convert.ToBase64String));
        Assert.Equal(3, a.OfType<PreferenceRecord>().Count());
        Assert.Equal(4, a.OfType<RatingRecord>().Count());
    }

    [Fact]
    public void Pair_choices_follow_bradley_terry_with_the_configured_temperature()
    {
        // U(short) − U(long) = 8 chars / 8 chars-per-nat = 1 nat; at T = 1, P(short) = σ(1) ≈ 0.731; at T = 2, σ(0.5) ≈ 0.622.
        var group = new[] { Rollout("r-s", "12345678"), Rollout("r-l", "1234567812345678") };
        foreach (var (temperature, expected) in new[] { (1.0, 1 / (1 + Math.Exp(-1.0))), (2.0, 1 / (1 + Math.Exp(-0.5))) })
        {
            var labeler = new SimulatedLabeler(new SimulatedUsersOptions { Temperature = temperature }, seed: 5);
            const int n = 20_000;
            var shortWins = 0;
            for (var i = 0; i < n; i++)
            {
                var pair = (PreferenceRecord)labeler.Label(group, new LengthPreference()).Single();
                if (pair.Chosen == "12345678") shortWins++;
            }
            // 4 standard errors: this cannot fail by chance with a fixed seed, and catches a wrong formula.
            Assert.InRange(shortWins / (double)n, expected - 4 * Math.Sqrt(expected * (1 - expected) / n), expected + 4 * Math.Sqrt(expected * (1 - expected) / n));
        }
    }

    [Fact]
    public void Temperature_zero_always_picks_the_better_one_and_flips_invert_it_at_their_rate()
    {
        var group = new[] { Rollout("r-s", "short"), Rollout("r-l", "much much longer") };
        var exact = new SimulatedLabeler(new SimulatedUsersOptions { Temperature = 0 }, seed: 1);
        for (var i = 0; i < 200; i++) Assert.Equal("short", ((PreferenceRecord)exact.Label(group, new LengthPreference()).Single()).Chosen);

        var noisy = new SimulatedLabeler(new SimulatedUsersOptions { Temperature = 0, FlipProbability = 0.2 }, seed: 1);
        var flipped = Enumerable.Range(0, 10_000).Count(_ => ((PreferenceRecord)noisy.Label(group, new LengthPreference()).Single()).Chosen != "short");
        Assert.InRange(flipped, 1800, 2200);
    }

    [Fact]
    public void Pairs_join_to_their_rollouts_and_groups_without_two_distinct_completions_give_no_pair()
    {
        var labeler = new SimulatedLabeler(new SimulatedUsersOptions(), seed: 3, idPrefix: "run7");
        var pair = (PreferenceRecord)labeler.Label([Rollout("r-1", "a"), Rollout("r-2", "bb")], new LengthPreference()).Single();
        Assert.Equal("run7-l-00000001", pair.Id);
        Assert.Equal(new[] { "r-1", "r-2" }.Order(), new[] { pair.RolloutIds!.Chosen, pair.RolloutIds.Rejected }.Order());
        Assert.Empty(labeler.Label([Rollout("r-3", "same"), Rollout("r-4", "same")], new LengthPreference()));
        Assert.Empty(labeler.Label([], new LengthPreference()));
    }

    [Fact]
    public void Ratings_are_the_hidden_utility_plus_gaussian_noise()
    {
        var labeler = new SimulatedLabeler(new SimulatedUsersOptions { LabelMode = LabelMode.Ratings, RatingNoiseStd = 0.5 }, seed: 9);
        var rollout = Rollout("r-1", new string('x', 16)); // U = −2 nats
        var rewards = Enumerable.Range(0, 20_000).Select(_ => ((RatingRecord)labeler.Label([rollout], new LengthPreference()).Single()).Reward).ToArray();
        var mean = rewards.Average();
        var std = Math.Sqrt(rewards.Select(r => (r - mean) * (r - mean)).Average());
        Assert.InRange(mean, -2.02, -1.98);
        Assert.InRange(std, 0.48, 0.52);
    }

    [Fact]
    public void Preferences_parse_from_configuration_specs()
    {
        Assert.Equal(-2, HiddenPreferences.Parse("shorter").Utility("", new string('a', 16)));
        // The default, length:4 (4 characters per nat): the optimum is a visible 4-letter answer, not the empty one.
        var demo = HiddenPreferences.Parse(HiddenPreferences.DefaultSpec);
        Assert.Equal(0, demo.Utility("a:", "bcde"));
        Assert.Equal(-1, demo.Utility("a:", ""));
        Assert.Equal(-2, demo.Utility("a:", "bcdefghijklm"));
        Assert.Equal("length 4 (4 chars/nat)", demo.Description);
        Assert.Equal(-1, HiddenPreferences.Parse("length:4:8").Utility("", new string('a', 12)));
        Assert.Equal(1, new ReversedPreference(demo).Utility("", new string('a', 8)));
        Assert.Equal(4, HiddenPreferences.Parse("longer:4").Utility("", new string('a', 16)));
        Assert.Equal(4, HiddenPreferences.Parse("contains:!").Utility("", "hi! yes!"));
        Assert.Equal(-2, HiddenPreferences.Parse("avoids:no").Utility("", "no way"));
        Assert.Equal(10, new PatternPreference("!", maxOccurrences: 5).Utility("", "!!!!!!!!!!"));
        Assert.Equal(2, new ReversedPreference(new LengthPreference()).Utility("", new string('a', 16)));
        Assert.Throws<FormatException>(() => HiddenPreferences.Parse("kinder"));
        Assert.Throws<FormatException>(() => HiddenPreferences.Parse("shorter:-1"));
        Assert.Throws<FormatException>(() => HiddenPreferences.Parse("length"));
        Assert.Throws<FormatException>(() => HiddenPreferences.Parse("length:-4"));
        Assert.Throws<FormatException>(() => HiddenPreferences.Parse("length:four"));
        Assert.Throws<FormatException>(() => HiddenPreferences.Parse("length:4:0"));
        Assert.Throws<FormatException>(() => HiddenPreferences.Parse("length:4:8:1"));
        Assert.Throws<FormatException>(() => HiddenPreferences.Parse("contains:"));
    }

    [Fact]
    public void Invalid_options_are_listed()
    {
        var problems = new SimulatedUsersOptions { PromptsPerSecond = 0, Temperature = -1, FlipProbability = 0.9, Preference = "kinder", GroupSize = 0 }.Problems();
        Assert.Equal(5, problems.Count);
    }
}
