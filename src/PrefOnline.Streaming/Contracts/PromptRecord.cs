using System.Text.Json;

namespace PrefOnline.Streaming.Contracts;

/// <summary>
/// <c>prefonline.prompt.v1</c> (topic <c>prefonline.prompts</c>): a prompt to generate rollouts for.
/// <code>{"schema":"prefonline.prompt.v1","id":"p-42","prompt":"Tell me a joke.","meta":{"user":"u7"}}</code>
/// </summary>
/// <param name="Id">Unique per topic (duplicates are dead-lettered as <c>duplicate-id</c>).</param>
/// <param name="Prompt">The prompt text (may be empty: unconditional generation).</param>
/// <param name="MetaJson">Optional opaque metadata: the raw JSON text of an object, passed through untouched.</param>
public sealed record PromptRecord(string Id, string Prompt, string? MetaJson = null) : StreamRecord
{
    public override string Schema => SchemaNames.PromptV1;

    public string Id { get; } = ContractRules.RequireId(Id, nameof(Id));

    public string Prompt { get; } = ContractRules.RequireText(Prompt, nameof(Prompt));

    public string? MetaJson { get; } = MetaJson is null || IsJsonObject(MetaJson) ? MetaJson : throw new ArgumentException("meta must be the JSON text of an object", nameof(MetaJson));

    private static bool IsJsonObject(string json)
    {
        try
        {
            // As deep as the validator may be configured to accept (ValidationLimits.MaxJsonDepth <= 256), so a
            // meta it passed is never refused here (JsonDocument's default depth is 64).
            using var document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 256 });
            return document.RootElement.ValueKind == JsonValueKind.Object;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
