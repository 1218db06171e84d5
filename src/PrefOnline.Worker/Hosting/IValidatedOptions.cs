namespace PrefOnline.Worker.Hosting;

/// <summary>An options class that checks itself: one line per invalid setting, each naming its configuration key.</summary>
public interface IValidatedOptions
{
    IReadOnlyList<string> Problems();
}
