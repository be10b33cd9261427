"""The dialogue flow engine: plain Python, no Django, no database.

`cards` defines and validates a flow, `engine` steps a conversation through it, `tokens` renders
personalisation, `conditions` evaluates branch rules, `inputs` validates what visitors type.
"""
