"""The pure queue core (排队叫号核心): no asyncio, SQL, MQTT or HTTP in here.

Typed commands go in (``commands``), events and replies come out (``events``); a refused
command raises ``Refused`` before it changes anything. The hall (``hall.HallState``) composes
one module per concern: tickets and lines, windows and clerks, ratings, the calendar.
"""
