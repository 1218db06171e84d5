using System.Net;
using Microsoft.Extensions.Options;
using PrefOnline.Tensors;

namespace PrefOnline.Worker.Observability;

/// <summary>Start-up validation of <see cref="ObservabilityOptions"/>: every problem named with its configuration key.</summary>
public sealed class ObservabilityOptionsValidator : IValidateOptions<ObservabilityOptions>
{
    public ValidateOptionsResult Validate(string? name, ObservabilityOptions options)
    {
        const string p = ObservabilityOptions.SectionName;
        var errors = new List<string>();
        if (options.Port is < 0 or > 65535) errors.Add($"{p}:Port must be 0..65535 (got {options.Port}).");
        if (!IPAddress.TryParse(options.BindAddress, out _)) errors.Add($"{p}:BindAddress must be an IP address such as 0.0.0.0 or 127.0.0.1 (got '{options.BindAddress}').");
        if (options.ProbeTimeout <= TimeSpan.Zero) errors.Add($"{p}:ProbeTimeout must be positive (got {options.ProbeTimeout}).");
        if (options.TensorThreadAnswerWait <= TimeSpan.Zero || options.TensorThreadAnswerWait >= options.ProbeTimeout)
            errors.Add($"{p}:TensorThreadAnswerWait must be positive and shorter than ProbeTimeout ({options.ProbeTimeout}) (got {options.TensorThreadAnswerWait}).");
        if (options.TensorThreadStallTimeout < options.ProbeTimeout)
            errors.Add($"{p}:TensorThreadStallTimeout must be at least ProbeTimeout (got {options.TensorThreadStallTimeout}).");
        if (options.ReadinessInterval < TimeSpan.FromMilliseconds(100)) errors.Add($"{p}:ReadinessInterval must be at least 100 ms (got {options.ReadinessInterval}).");

        var otlp = options.Otlp ?? new OtlpOptions();
        if (otlp.Enabled)
        {
            if (!Uri.TryCreate(otlp.Endpoint, UriKind.Absolute, out var endpoint) || endpoint.Scheme is not ("http" or "https"))
            {
                errors.Add($"{p}:Otlp:Endpoint must be an absolute http(s) URL when Otlp:Enabled is true (got '{otlp.Endpoint}').");
            }
            else if (otlp.Protocol == OtlpProtocol.HttpProtobuf && !endpoint.AbsolutePath.EndsWith("/v1/metrics", StringComparison.Ordinal))
            {
                errors.Add($"{p}:Otlp:Endpoint for HttpProtobuf must be the full URL ending in /v1/metrics, e.g. http://otel-collector:4318/v1/metrics (got '{otlp.Endpoint}').");
            }
            if (otlp.ExportInterval < TimeSpan.FromMilliseconds(100)) errors.Add($"{p}:Otlp:ExportInterval must be at least 100 ms (got {otlp.ExportInterval}).");
            if (otlp.Timeout <= TimeSpan.Zero) errors.Add($"{p}:Otlp:Timeout must be positive (got {otlp.Timeout}).");
            if (!string.IsNullOrEmpty(otlp.Headers) && otlp.Headers.Split(',').Any(h => h.IndexOf('=') <= 0))
                errors.Add($"{p}:Otlp:Headers must be key=value pairs separated by commas.");
        }
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
