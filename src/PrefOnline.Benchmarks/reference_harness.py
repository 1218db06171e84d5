# The PyTorch side of `prefonline bench`: one long-lived /usr/bin/python3 process driven by
# PythonReferenceSession over stdin/stdout, one JSON object per line each way, so the C# and PyTorch
# rounds of a benchmark can be interleaved in one invocation.
#
# Requests (each answered by exactly one line: {"ok": true, ...} or {"ok": false, "error": "..."}):
#   {"op": "hello", "threads": N}        set torch's intra-op threads; answers versions and the thread count
#   {"op": "load", "module": M, "source": S}   exec a benchmark's reference source as module M
#   {"op": "setup", "id": I, "module": M, "function": F, "args": {...}}
#                                         call M.setup_F(args); it returns a zero-argument round function
#   {"op": "round", "id": I}              run one round; answers {"seconds": s}: the number the round
#                                         function returned, or the wall time of the call when it returned None
#   {"op": "drop", "id": I}               forget a case (frees its tensors)
#   {"op": "exit"}
# Whatever benchmark code prints goes to stderr: stdout carries the protocol only.
import json
import platform
import sys
import time
import traceback
import types

protocol = sys.stdout
sys.stdout = sys.stderr

try:
    import torch
except ImportError as e:  # the C# side turns this into the install command
    protocol.write(json.dumps({"ok": False, "error": "no torch: " + str(e), "missing_torch": True}) + "\n")
    protocol.flush()
    sys.exit(3)

modules = {}
rounds = {}


def handle(request):
    op = request.get("op")
    if op == "hello":
        threads = int(request.get("threads", 0))
        if threads > 0:
            torch.set_num_threads(threads)
        return {"torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads()}
    if op == "load":
        name = request["module"]
        module = types.ModuleType("prefonline_bench_" + name)
        module.__dict__["torch"] = torch
        exec(compile(request["source"], "<reference " + name + ">", "exec"), module.__dict__)
        modules[name] = module
        return {}
    if op == "setup":
        module = modules[request["module"]]
        function = getattr(module, "setup_" + request["function"], None)
        if function is None:
            raise KeyError("reference module '%s' has no setup_%s" % (request["module"], request["function"]))
        round_function = function(request.get("args") or {})
        if not callable(round_function):
            raise TypeError("setup_%s must return a zero-argument round function" % request["function"])
        rounds[request["id"]] = round_function
        return {}
    if op == "round":
        round_function = rounds[request["id"]]
        start = time.perf_counter()
        measured = round_function()
        elapsed = time.perf_counter() - start
        return {"seconds": float(measured) if measured is not None else elapsed}
    if op == "drop":
        rounds.pop(request["id"], None)
        return {}
    raise ValueError("unknown op %r" % (op,))


for line in iter(sys.stdin.readline, ""):
    line = line.strip()
    if not line:
        continue
    try:
        request = json.loads(line)
        if request.get("op") == "exit":
            break
        answer = handle(request)
        answer["ok"] = True
    except Exception:
        answer = {"ok": False, "error": traceback.format_exc(limit=6).strip()}
    protocol.write(json.dumps(answer) + "\n")
    protocol.flush()
