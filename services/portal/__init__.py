"""The web portal for people: server-rendered pages that call the TTP services on a party's behalf."""
