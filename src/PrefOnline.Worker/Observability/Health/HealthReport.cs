using System.Text;
using System.Text.Json;

namespace PrefOnline.Worker.Observability.Health;

/// <summary>The verdict of /healthz or /readyz: healthy only if every check is; the JSON body lists every check with its reason.</summary>
public sealed record HealthReport(bool Healthy, IReadOnlyList<ProbeResult> Checks)
{
    /// <summary><c>{"status":"ok"|"fail","checks":[{"name":…,"healthy":…,"reason":…}]}</c></summary>
    public string ToJson()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("status", Healthy ? "ok" : "fail");
            json.WriteStartArray("checks");
            foreach (var check in Checks)
            {
                json.WriteStartObject();
                json.WriteString("name", check.Name);
                json.WriteBoolean("healthy", check.Healthy);
                json.WriteString("reason", check.Reason);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }
}
