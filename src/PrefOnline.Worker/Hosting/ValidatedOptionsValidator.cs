using Microsoft.Extensions.Options;

namespace PrefOnline.Worker.Hosting;

/// <summary>Adapts <see cref="IValidatedOptions.Problems"/> to the options pipeline (ValidateOnStart).</summary>
public sealed class ValidatedOptionsValidator<T> : IValidateOptions<T> where T : class, IValidatedOptions
{
    public ValidateOptionsResult Validate(string? name, T options)
    {
        var problems = options.Problems();
        return problems.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(problems);
    }
}
