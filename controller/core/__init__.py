"""The pure queue core (排队叫号核心): no asyncio, SQL, MQTT or HTTP in here.

Commands go in, events and replies come out; a refused command raises ``Refused`` before it
changes anything.
"""

from controller.core.errors import Refused
from controller.core.hall import HallState
from controller.core.model import Event, Priority, Ticket, TicketState, WindowState

__all__ = ["Event", "HallState", "Priority", "Refused", "Ticket", "TicketState", "WindowState"]
