namespace PrefOnline.Torch;

public enum DeviceKind
{
    Cpu,
    Cuda,
}
