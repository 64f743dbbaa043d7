"""Analysts' rules and lists: the language (parse, check, compile to closures) in `language`,
the lists in memory in `lists`. Pure code: no web, no database; the service wires it in."""
