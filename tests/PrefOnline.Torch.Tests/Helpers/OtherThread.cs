namespace PrefOnline.Torch.Tests.Helpers;

/// <summary>
/// Runs an action on a fresh OS thread and returns what it threw. Tests of thread-bound state
/// (scopes, grad mode) use it instead of await, because an await may resume the test itself on
/// another thread, which is exactly the hop those tests are about.
/// </summary>
internal static class OtherThread
{
    public static Exception? Run(Action action)
    {
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                action();
            }
            catch (Exception e)
            {
                error = e;
            }
        });
        thread.Start();
        thread.Join();
        return error;
    }

    public static T Get<T>(Func<T> func)
    {
        T result = default!;
        var error = Run(() => result = func());
        if (error is not null) throw new InvalidOperationException("the other thread failed", error);
        return result;
    }
}
