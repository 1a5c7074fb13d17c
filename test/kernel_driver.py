"""Drive a Jupyter kernel with jupyter_client and report what each cell produced, as JSON on stdout.

Used by test/kernel.test.ts (run with /usr/bin/python3, which has Debian's jupyter_client):

    python3 test/kernel_driver.py KERNEL_NAME < cells.json

cells.json is a list of {"code": str, "interrupt_after": seconds (optional), "timeout": seconds (optional)}.
For each cell the report has: status (ok / error / abort / timeout), stdout, stderr, displays (a list of
{"mimes": [...], "display_id": ..., "update": bool}), errors (error messages from iopub 'error' messages),
ename / evalue (from the execute_reply), result (text/plain of the execute_result, or null), input_count (the
execute_input's execution_count, or null), reply_count (the execute_reply's) and seconds (wall time). The driver exits 0 whenever it could run the cells; the assertions live in the TS test.
"""
import json
import subprocess
import sys
import time
from queue import Empty

from jupyter_client.manager import start_new_kernel


def run_cell(km, kc, cell):
    timeout = cell.get("timeout", 120)
    interrupt_after = cell.get("interrupt_after")
    t0 = time.time()
    msg_id = kc.execute(cell["code"], stop_on_error=False)
    out = {"status": None, "stdout": "", "stderr": "", "displays": [], "errors": [], "seconds": 0.0,
           "result": None, "input_count": None, "reply_count": None}
    interrupted = False
    reply = None
    idle = False
    while True:
        now = time.time()
        if interrupt_after is not None and not interrupted and now - t0 >= interrupt_after:
            km.interrupt_kernel()
            interrupted = True
        if now - t0 > timeout:
            out["status"] = "timeout"
            break
        try:
            msg = kc.get_iopub_msg(timeout=0.2)
        except Empty:
            msg = None
        if msg is not None and msg.get("parent_header", {}).get("msg_id") == msg_id:
            kind = msg["header"]["msg_type"]
            content = msg["content"]
            if kind == "execute_input":
                out["input_count"] = content.get("execution_count")
            elif kind == "execute_result":
                out["result"] = content["data"].get("text/plain")
            if kind == "stream":
                out[content["name"]] += content["text"]
            elif kind in ("display_data", "update_display_data"):
                out["displays"].append({
                    "mimes": sorted(content["data"].keys()),
                    "display_id": content.get("transient", {}).get("display_id"),
                    "update": kind == "update_display_data",
                    "text": content["data"].get("text/plain"),
                    "vegalite_is_object": isinstance(content["data"].get("application/vnd.vegalite.v5+json"), dict),
                })
            elif kind == "error":
                out["errors"].append(content.get("ename", "") + ": " + content.get("evalue", ""))
            elif kind == "status" and content["execution_state"] == "idle":
                idle = True
        if reply is None:
            try:
                r = kc.get_shell_msg(timeout=0.05)
                if r["parent_header"].get("msg_id") == msg_id:
                    reply = r
            except Empty:
                pass
        if reply is not None and idle:
            out["status"] = reply["content"]["status"]
            out["ename"] = reply["content"].get("ename")
            out["evalue"] = reply["content"].get("evalue")
            out["reply_count"] = reply["content"].get("execution_count")
            break
    out["seconds"] = round(time.time() - t0, 3)
    out["interrupted"] = interrupted
    return out


def main():
    kernel_name = sys.argv[1] if len(sys.argv) > 1 else "rome-ts"
    cells = json.load(sys.stdin)
    # The kernel's own stdout must not mix with the JSON report: send it to our stderr.
    # 300 s: a kernel start takes minutes on a heavily loaded machine.
    km, kc = start_new_kernel(kernel_name=kernel_name, startup_timeout=300, stdout=sys.stderr.fileno())
    results = []
    try:
        for cell in cells:
            # tslab aborts requests that arrive within 200 ms after a failed cell (as IPython aborts the queue
            # on error); a person running cells one by one never hits that window.
            time.sleep(cell.get("pause_before", 0.3))
            results.append(run_cell(km, kc, cell))
        alive = km.is_alive()
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    json.dump({"results": results, "alive_at_end": alive}, sys.stdout)


if __name__ == "__main__":
    main()
