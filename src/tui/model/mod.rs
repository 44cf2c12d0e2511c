//! What the workbench knows about a run, apart from how it is drawn: a pure reduction of the
//! run's [`Event`](crate::dln::events::Event)s. Nothing here imports the view, the editor or the
//! terminal; the live loop and `dln replay` feed the same events through [`RunView::apply`].

mod eta;
mod feedback;
mod gepa;
mod layer;
mod posterior_edit;
mod run_view;
pub mod text;

pub use layer::{
    ForecastView, Intervention, IterationPoint, LayerView, Level, PosteriorView, StageView,
    WinnerRecord,
};
pub use run_view::{event_iteration, RunView};
