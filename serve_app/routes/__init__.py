"""One router per resource; each handler parses, authorises, calls one function, shapes the answer."""
