"""textgym agents: they drive any textgym env through the plain reset()/step() loop."""
