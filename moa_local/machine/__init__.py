"""The machine a mixture runs on: its devices, who may generate when, and hosts.

* :mod:`.devices`: devices and their memory, physical cores, the budgets derived;
* :mod:`.scheduler`: leases weighted by memory per device, compute slots, load and unload;
* :mod:`.replicas`: one model over several hosts, placement and back-off.
"""
