def test_x(browser):
    assert browser
