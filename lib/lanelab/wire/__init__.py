"""What goes on the wire and what comes back: ``spec`` (requests as data, one ``send``), ``unified`` (the rate-limit
headers and the billing lane they imply) and ``classify`` (an outcome class per response, rules from data)."""
