"""pufa (普法): chatbot and mobile micro-survey backend for a district's law-based-government
programme: satisfaction surveys, the 普法学法微课堂 lecture rota and the 法律明白人 registry."""

__version__ = "0.1.0"
