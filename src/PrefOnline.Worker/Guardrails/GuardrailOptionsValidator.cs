using Microsoft.Extensions.Options;
using PrefOnline.Learning.Guardrails;

namespace PrefOnline.Worker.Guardrails;

/// <summary>Start-up validation of the <c>Guardrails</c> section (the rules live in <see cref="GuardrailOptions.Validate"/>).</summary>
public sealed class GuardrailOptionsValidator : IValidateOptions<GuardrailOptions>
{
    public ValidateOptionsResult Validate(string? name, GuardrailOptions options)
    {
        var errors = options.Validate();
        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
