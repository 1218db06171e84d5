using System.Runtime.CompilerServices;

namespace PrefOnline.Tensors.Build;

/// <summary>
/// Compiled into every assembly of ours that calls TorchSharp (each project links this file): registers
/// <see cref="FinalizerGuard"/>'s resolver before any code of the assembly runs, so whichever assembly
/// touches TorchSharp first, its P/Invokes bind through libPrefOnlineFinalizerGuard.so. Only a resolver is
/// registered here; nothing native is loaded until TorchSharp's first call.
/// </summary>
internal static class InstallFinalizerGuard
{
#pragma warning disable CA2255 // a library's module initializer: exactly what this needs, the resolver must precede any TorchSharp call
    [ModuleInitializer]
    internal static void Run() => FinalizerGuard.Install();
#pragma warning restore CA2255
}
