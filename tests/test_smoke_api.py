def test_it_walks_a_visitor_to_the_end_of_a_dialogue(acme_widget, acme_dialogue):
    conversation = acme_widget.start_conversation(acme_dialogue)
    assert [m["text"] for m in conversation["messages"]] == ["Hi there!", "Want a demo?"]

    response = acme_widget.answer(conversation, "no")

    assert response.status_code == 200
    assert response.json()["messages"] == [{"card_id": "bye", "text": "Thanks, talk soon."}]
    assert response.json()["done"] is True
