"""A LangGraph agent with a tool: the model asks for the tool, LangGraph's ToolNode runs it,
and the model answers from its result. llmtap traces it through LangChain's callbacks: one
``invoke_agent`` span for the graph run, its two ``chat`` calls (merged with llmtap's OpenAI
instrumentation underneath: one span per call) and the ``execute_tool`` span between them;
the thread id becomes ``gen_ai.conversation.id``.

    python examples/langgraph_agent/app.py   # offline; with OPENAI_API_KEY set, against OpenAI
"""

from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

import llmtap
from llmtap.devserver import offline_unless_keyed
from llmtap.export.console import ConsoleTreeExporter
from llmtap.instrumentation.langchain import LangChainInstrumentor


@tool
def get_order_status(order_id: str) -> dict:
    """Look up the shipping status of an order."""
    return {"order_id": order_id, "status": "shipped", "carrier": "DHL"}


def build_agent() -> object:
    model = ChatOpenAI(model="gpt-4o-mini", temperature=0).bind_tools([get_order_status])

    def call_model(state: MessagesState) -> dict:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("model", call_model)
    graph.add_node("tools", ToolNode([get_order_status]))
    graph.add_edge(START, "model")
    graph.add_conditional_edges("model", tools_condition)
    graph.add_edge("tools", "model")
    return graph.compile(name="order-agent")


if __name__ == "__main__":
    offline_unless_keyed()
    telemetry = llmtap.configure(
        service_name="example-langgraph-agent", span_exporters=[ConsoleTreeExporter()]
    )
    langchain = LangChainInstrumentor()
    if not langchain.is_instrumented_by_opentelemetry:  # configure() does it once registered
        langchain.instrument(
            tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider
        )
    agent = build_agent()
    config = {"configurable": {"thread_id": "support-thread-7"}}
    with llmtap.context(user_id="user-5", feature="orders"):
        result = agent.invoke({"messages": [("user", "Where is order A-1042?")]}, config)
    print(result["messages"][-1].content)
    telemetry.shutdown()
