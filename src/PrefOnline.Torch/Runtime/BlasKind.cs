namespace PrefOnline.Torch;

/// <summary>Which BLAS libtorch's matrix multiplies ended up in (the libblas.so.3 the process mapped).</summary>
public enum BlasKind
{
    /// <summary>No libblas.so.3 mapping found (not Linux, or libtorch not loaded yet).</summary>
    Unknown,

    /// <summary>Debian's reference (netlib) BLAS: correct but ~25x slower.</summary>
    Reference,

    /// <summary>OpenBLAS, OpenMP flavour: honours libtorch's per-thread thread count (what we want).</summary>
    OpenBlasOpenMp,

    /// <summary>OpenBLAS, pthread flavour: ignores set_num_threads and oversubscribes the cores.</summary>
    OpenBlasPthread,

    /// <summary>OpenBLAS single-threaded flavour.</summary>
    OpenBlasSerial,

    /// <summary>Another library (MKL, BLIS, ATLAS, ...): judged by the speed probe alone.</summary>
    Other,
}
