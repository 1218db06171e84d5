namespace PrefOnline.Worker.Observability;

/// <summary>OTLP transport for the optional metrics push.</summary>
public enum OtlpProtocol
{
    /// <summary>gRPC, usually port 4317.</summary>
    Grpc,
    /// <summary>HTTP with protobuf bodies, usually port 4318, path /v1/metrics.</summary>
    HttpProtobuf,
}
