"""Flows a new dialogue can start from: a blank one and a few that marketers ask for most
(see ../shared/reference/peer-products.md). Each is a valid draft, checked by the tests."""

BLANK = {
    "start": "hello",
    "cards": [
        {"id": "hello", "type": "message", "text": "Hi! How can we help?", "next": "bye"},
        {"id": "bye", "type": "end", "text": "Thanks for stopping by."},
    ],
}

BOOK_A_DEMO = {
    "start": "hello",
    "cards": [
        {
            "id": "hello",
            "type": "message",
            "text": 'Hi {{lead.firstName | "there"}}, want to see the product in action?',
            "next": "want",
        },
        {
            "id": "want",
            "type": "question",
            "text": "Shall we book you a demo?",
            "choices": [
                {"label": "Yes, book a demo", "value": "yes", "next": "email"},
                {"label": "Just looking", "value": "no", "next": "bye"},
            ],
        },
        {
            "id": "email",
            "type": "capture",
            "text": "What is your work email?",
            "input_type": "email",
            "attribute": "email",
            "skip_if_known": True,
            "next": "goal",
        },
        {"id": "goal", "type": "goal", "name": "Demo requested", "next": "book"},
        {"id": "book", "type": "booking", "text": "Pick a time that suits you."},
        {"id": "bye", "type": "end", "text": "No problem. We are here if you need us."},
    ],
}

QUALIFY_A_LEAD = {
    "start": "hello",
    "cards": [
        {"id": "hello", "type": "message", "text": "Hi! Two quick questions?", "next": "size"},
        {
            "id": "size",
            "type": "question",
            "text": "How large is your team?",
            "choices": [
                {"label": "1-10", "value": "small", "next": "email"},
                {"label": "11-200", "value": "mid", "next": "email"},
                {"label": "200+", "value": "large", "next": "email"},
            ],
        },
        {
            "id": "email",
            "type": "capture",
            "text": "Where can we send more details?",
            "input_type": "email",
            "attribute": "email",
            "skip_if_known": True,
            "next": "route",
        },
        {
            "id": "route",
            "type": "branch",
            "rules": [
                {
                    "conditions": [
                        {"subject": "answer.size", "operator": "equals", "value": "large"}
                    ],
                    "next": "qualified",
                }
            ],
            "default_next": "bye",
        },
        {"id": "qualified", "type": "goal", "name": "Qualified lead", "next": "book"},
        {"id": "book", "type": "booking", "text": "Let us find a time with our team."},
        {"id": "bye", "type": "end", "text": "Thanks! We will be in touch."},
    ],
}

CONTENT_OFFER = {
    "start": "hello",
    "cards": [
        {
            "id": "hello",
            "type": "message",
            "text": "Our latest guide is free. Want a copy?",
            "next": "want",
        },
        {
            "id": "want",
            "type": "question",
            "text": "Send it to you?",
            "choices": [
                {"label": "Yes please", "value": "yes", "next": "email"},
                {"label": "No thanks", "value": "no", "next": "bye"},
            ],
        },
        {
            "id": "email",
            "type": "capture",
            "text": "Which email should we send it to?",
            "input_type": "email",
            "attribute": "email",
            "next": "goal",
        },
        {"id": "goal", "type": "goal", "name": "Guide requested", "next": "sent"},
        {"id": "sent", "type": "end", "text": "On its way. Enjoy the read!"},
        {"id": "bye", "type": "end", "text": "No problem."},
    ],
}

ANONYMOUS_VISITOR = {
    "start": "hello",
    "cards": [
        {"id": "hello", "type": "message", "text": "Welcome! First time here?", "next": "name"},
        {
            "id": "name",
            "type": "capture",
            "text": "What should we call you?",
            "input_type": "text",
            "attribute": "firstName",
            "next": "email",
        },
        {
            "id": "email",
            "type": "capture",
            "text": "Thanks {{lead.firstName}}. Your email, so we can follow up?",
            "input_type": "email",
            "attribute": "email",
            "next": "goal",
        },
        {"id": "goal", "type": "goal", "name": "Anonymous visitor identified", "next": "bye"},
        {"id": "bye", "type": "end", "text": "Great to meet you."},
    ],
}

STARTERS = {
    "blank": ("Blank", BLANK),
    "book_a_demo": ("Book a demo", BOOK_A_DEMO),
    "qualify_a_lead": ("Qualify a lead", QUALIFY_A_LEAD),
    "content_offer": ("Content offer", CONTENT_OFFER),
    "anonymous_visitor": ("Anonymous visitor", ANONYMOUS_VISITOR),
}
