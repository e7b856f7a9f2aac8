export function render({el}){ el.textContent = 'not yet'; } export default { render };
