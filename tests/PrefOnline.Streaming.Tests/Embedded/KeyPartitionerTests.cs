using System.Text;
using PrefOnline.Streaming.Embedded;

namespace PrefOnline.Streaming.Tests.Embedded;

public sealed class KeyPartitionerTests
{
    // Reference values of Kafka's Utils.murmur2 (the Java client's UtilsTest.testMurmur2).
    [Theory]
    [InlineData("21", -973932308)]
    [InlineData("foobar", -790332482)]
    [InlineData("a-little-bit-long-string", -985981536)]
    [InlineData("a-little-bit-longer-string", -1486304829)]
    [InlineData("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971)]
    [InlineData("abc", 479470107)]
    public void Murmur2_matches_the_java_client(string key, int expected) => Assert.Equal(expected, KeyPartitioner.Murmur2(Encoding.UTF8.GetBytes(key)));

    [Fact]
    public void Partitions_are_in_range_and_stable()
    {
        for (var i = 0; i < 1000; i++)
        {
            var key = Encoding.UTF8.GetBytes($"key-{i}");
            var partition = KeyPartitioner.PartitionFor(key, 7);
            Assert.InRange(partition, 0, 6);
            Assert.Equal(partition, KeyPartitioner.PartitionFor(key, 7));
        }
    }
}
