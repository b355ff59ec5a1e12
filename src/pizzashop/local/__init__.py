"""The shop on this machine: the supervisor behind `pizzashop up` and the ports its parts use."""
